# Copyright: safe_migrate authors
#
# A migration that fails after many statements: the failure is recorded
# with the statement that failed, its error, detail and hint, intact.
#
# The statement texts and the copied error of a migration run in the
# caller live in memory contexts; a context that is gone before the
# failure is recorded (SPI's, after SPI_finish) leaves the record pointing
# at freed memory.  With a small script that memory is recycled inside
# PostgreSQL and usually still reads right; with a script of more than a
# few kilobytes it is handed back to malloc, where the sanitizer run
# (scripts/sanitize.sh) catches the read, and a plain build may read
# garbage.  Both paths: in the caller, and in the runner (a concurrent
# index build sends the migration to a background worker).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use SafeMigrateTest;

my $node = start_node('large_failing_script');
$node->safe_psql('postgres', 'CREATE EXTENSION safe_migrate');

my %first = (
	caller => 'CREATE TABLE IF NOT EXISTS padded_in_caller (id int, a_rather_long_column_name text);',
	runner => 'CREATE INDEX CONCURRENTLY IF NOT EXISTS padded_idx ON padded_in_runner (id);');
$node->safe_psql('postgres', 'CREATE TABLE padded_in_runner (id int)');

for my $path ('caller', 'runner')
{
	my $version = "large-$path";
	my $failing = "SELECT 1 / (SELECT count(*) - count(*) FROM pg_class) AS $path\_fails_here";
	my $script = join("\n", ($first{$path}) x 1200) . "\n$failing;\n";
	cmp_ok(length($script), '>', 64 * 1024, "$path: the script is larger than 64 kB");

	my $log_offset = -s $node->logfile;
	# not 1200 notices of IF NOT EXISTS
	local $ENV{PGOPTIONS} = '-c client_min_messages=warning';
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT status FROM migrate_apply(\$m\$$script\$m\$, '$version')");
	isnt($ret, 0, "$path: the migration fails");
	like($err, qr/ERROR:  division by zero/, "$path: with the statement's error");
	ok( !$node->log_contains(qr/terminated by signal/, $log_offset),
		"$path: no server process died by a signal");

	is( $node->safe_psql(
			'postgres', qq{
		SELECT status || '|' || sqlstate || '|' || error_message || '|' || failed_statement
		  FROM safe_migrate.history WHERE version = '$version'}),
		"failed|22012|division by zero|$failing",
		"$path: the history records the failed statement and its error intact");
}

done_testing();
