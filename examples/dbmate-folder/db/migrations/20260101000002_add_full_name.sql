-- migrate:up
ALTER TABLE ex_users ADD COLUMN full_name text;

-- migrate:down
-- safe_migrate:allow ban-drop-column the down script drops what the up script added
ALTER TABLE ex_users DROP COLUMN full_name;
