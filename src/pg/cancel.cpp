/*
 * cancel.cpp — see cancel.hpp.
 *
 * The SIGINT handler in force (StatementCancelHandler, through pqsignal's
 * wrapper on newer servers) stays in charge: ours only notes who sent the
 * signal, then calls it.
 */
#include "cancel.hpp"
#include "guard.hpp"

#include <signal.h>
#include <string.h>

extern "C" {
#include "miscadmin.h"
}

namespace safe_migrate::pg {

namespace {

volatile sig_atomic_t external_cancel = 0;
struct sigaction previous;
bool installed = false;
TimestampTz deadline = 0;

void on_sigint(int signo, siginfo_t *info, void *context)
{
    /* a timer of ours (lock_timeout, statement_timeout) signals this very
     * process; anything else is somebody asking us to stop */
    if (info == nullptr || info->si_pid != MyProcPid)
        external_cancel = 1;
    if (previous.sa_flags & SA_SIGINFO)
        previous.sa_sigaction(signo, info, context);
    else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN)
        previous.sa_handler(signo);
}

void install(void)
{
    if (installed)
        return;
    struct sigaction current;
    if (sigaction(SIGINT, nullptr, &current) != 0)
        return;
    /* only over a handler that exists (a backend's, a worker's with a
     * database connection); never over the default or an ignored signal */
    if (!(current.sa_flags & SA_SIGINFO) &&
        (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN))
        return;
    struct sigaction mine;
    memset(&mine, 0, sizeof(mine));
    mine.sa_sigaction = on_sigint;
    mine.sa_mask = current.sa_mask;
    mine.sa_flags = (current.sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    previous = current;
    if (sigaction(SIGINT, &mine, nullptr) == 0)
        installed = true;
}

}  // namespace

void watch_cancels(TimestampTz statement_deadline)
{
    install();
    external_cancel = 0;
    deadline = statement_deadline;
}

ErrorData *hidden_cancel(void)
{
    /* the words PostgreSQL uses for the cancel it would have reported */
    if (external_cancel)
        return error_data(ERRCODE_QUERY_CANCELED, "canceling statement due to user request");
    if (deadline != 0 && GetCurrentTimestamp() >= deadline)
        return error_data(ERRCODE_QUERY_CANCELED, "canceling statement due to statement timeout");
    return nullptr;
}

void check_hidden_cancel(void)
{
    if (ErrorData *cancel = hidden_cancel())
        ReThrowError(cancel);
}

}  // namespace safe_migrate::pg
