-- migrate:up
CREATE TABLE ex_users (id bigint PRIMARY KEY, first_name text NOT NULL, last_name text NOT NULL);

-- migrate:down
-- safe_migrate:allow ban-drop-table the down script drops what the up script created
DROP TABLE ex_users;
