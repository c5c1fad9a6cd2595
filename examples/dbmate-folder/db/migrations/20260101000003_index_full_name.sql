-- migrate:up
CREATE INDEX CONCURRENTLY ex_users_full_name ON ex_users (full_name);

-- migrate:down
DROP INDEX CONCURRENTLY ex_users_full_name;
