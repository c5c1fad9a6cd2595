-- The C++/PostgreSQL error boundary, exercised from SQL.
CREATE EXTENSION safe_migrate;

-- A C++ exception becomes an ERROR once the C++ frames are unwound.
SELECT safe_migrate.boundary_selftest('cpp_exception');
\echo :LAST_ERROR_SQLSTATE
SELECT safe_migrate.boundary_selftest('bad_alloc');
\echo :LAST_ERROR_SQLSTATE
-- A PostgreSQL error raised under pg::call travels through C++ as an
-- exception and comes back as the same error: SQLSTATE, detail and hint.
SELECT safe_migrate.boundary_selftest('pg_error');
\echo :LAST_ERROR_SQLSTATE
SELECT safe_migrate.boundary_selftest('pg_value');
-- Nested: caught in C++, rethrown with the original SQLSTATE.
SELECT safe_migrate.boundary_selftest('nested');
\echo :LAST_ERROR_SQLSTATE
-- Handled entirely inside C++: the backend carries on.
SELECT safe_migrate.boundary_selftest('caught_in_cpp');
-- Every C++ object alive when an error crossed was destroyed:
-- cpp_exception 1, bad_alloc 1, pg_error 1, nested 2.
SELECT safe_migrate.boundary_selftest('destructors');
-- Containers allocate from a PostgreSQL memory context.
SELECT safe_migrate.boundary_selftest('pmr');
-- Inside a subtransaction: PL/pgSQL catches the error by SQLSTATE and the
-- transaction goes on.
DO $$
BEGIN
    BEGIN
        PERFORM safe_migrate.boundary_selftest('pg_error');
    EXCEPTION WHEN division_by_zero THEN
        RAISE NOTICE 'caught % in a subtransaction', SQLSTATE;
    END;
    BEGIN
        PERFORM safe_migrate.boundary_selftest('cpp_exception');
    EXCEPTION WHEN internal_error THEN
        RAISE NOTICE 'caught C++ exception as %', SQLSTATE;
    END;
END
$$;
SELECT safe_migrate.boundary_selftest('destructors');
SELECT safe_migrate.boundary_selftest('no such test');
SELECT safe_migrate.boundary_selftest(NULL) IS NULL AS strict;
