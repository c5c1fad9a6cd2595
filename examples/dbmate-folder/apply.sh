#!/usr/bin/env bash
# Apply a folder of dbmate-format migrations with safe_migrate, one psql call
# per file (libpq settings from the environment: PGHOST, PGPORT, PGDATABASE...):
#   bash examples/dbmate-folder/apply.sh
# The version is the file name's leading number, the description the rest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
for f in db/migrations/*.sql; do
    name=$(basename "$f" .sql)
    psql -X -q -At -v ON_ERROR_STOP=1 -v script="$(cat "$f")" -v version="${name%%_*}" \
         -v description="${name#*_}" \
         <<< "SELECT version || ' ' || status FROM migrate_apply(:'script', :'version', :'description');"
done
