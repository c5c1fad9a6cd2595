#!/usr/bin/perl
# Validate a META.json against the PGXN Meta Spec 1.0.0
# (https://pgxn.org/spec/), written from the spec's text: required keys,
# the type and format of every key the spec defines (terms, SemVer
# versions, version ranges in prereqs, license names, URIs, the
# provides/resources/prereqs/no_index structures), "x_"/"X_" custom keys
# allowed anywhere, any other unknown key refused.  With --dir DIR (default:
# the file's directory) it also checks what the spec says must hold in the
# distribution: every provided extension's file and docfile exist.
#
#   perl scripts/pgxn_meta_check.pl [--dir DIR] META.json
# Prints "META.json: valid (PGXN Meta Spec 1.0.0)" or one line per problem,
# and exits 0 or 1.
use strict;
use warnings;
use JSON::PP;
use File::Basename qw(dirname);

my $dir;
if (@ARGV && $ARGV[0] eq '--dir') { shift; $dir = shift; }
my $file = shift or die "usage: $0 [--dir DIR] META.json\n";
$dir //= dirname($file);

my @problems;
sub problem { push @problems, join('', @_); }

my $meta = eval {
	open my $fh, '<:raw', $file or die "cannot read: $!\n";
	local $/;
	JSON::PP->new->utf8->decode(<$fh>);
};
if (!defined $meta) { print "$file: not JSON: $@"; exit 1; }
problem('the top level is not an object') unless ref $meta eq 'HASH';

# --- value formats -------------------------------------------------------
my $num = qr/(?:0|[1-9][0-9]*)/;
# SemVer as the spec cites it (2.0.0-style prerelease and build tags)
my $semver = qr/^$num\.$num\.$num(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;
sub is_string { my ($v) = @_; return defined $v && !ref $v && !JSON::PP::is_bool($v); }
sub is_version { my ($v) = @_; return is_string($v) && $v =~ $semver; }
# a term: at least two characters, no whitespace, slash, backslash or control
sub is_term { my ($v) = @_; return is_string($v) && length($v) >= 2 && $v !~ m{[\s/\\\x00-\x1f\x7f]}; }
# a tag: a string of 1 to 255 characters, no slash, backslash or control
sub is_tag { my ($v) = @_; return is_string($v) && length($v) >= 1 && length($v) <= 255 && $v !~ m{[/\\\x00-\x1f\x7f]}; }
sub is_uri { my ($v) = @_; return is_string($v) && $v =~ m{^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$}; }
# a version range in prereqs: "0" (any), a version, or comma-separated
# "op version" clauses with op one of == != <= >= < >
sub is_range
{
	my ($v) = @_;
	return 1 if is_string($v) && $v eq '0';
	return 1 if defined $v && !ref $v && $v =~ /^\d+$/ && $v == 0;
	return 0 unless is_string($v);
	for my $clause (split /\s*,\s*/, $v, -1)
	{
		$clause =~ s/^\s+|\s+$//g;
		return 0 unless $clause =~ /^(?:(?:==|!=|<=|>=|<|>)\s*)?(\S+)$/ && is_version($1);
	}
	return 1;
}
my %licenses = map { $_ => 1 } qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd
  freebsd gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0
  mozilla_1_1 openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source
  restricted unrestricted unknown);

sub custom_key { return $_[0] =~ /^[xX]_/; }

# keys of a hash: the known ones with their checks, custom ones allowed
sub check_keys
{
	my ($where, $h, $known, $required) = @_;
	unless (ref $h eq 'HASH') { problem("$where: not an object"); return; }
	for my $k (@$required) { problem("$where: required key \"$k\" is missing") unless exists $h->{$k}; }
	for my $k (sort keys %$h)
	{
		next if custom_key($k);
		if (!exists $known->{$k}) { problem("$where: unknown key \"$k\" (custom keys start with x_)"); next; }
		$known->{$k}->($h->{$k}, "$where.$k");
	}
}

sub string_check { my ($v, $w) = @_; problem("$w: not a non-empty string") unless is_string($v) && length $v; }
sub uri_check { my ($v, $w) = @_; problem("$w: not a URI") unless is_uri($v); }
sub version_check { my ($v, $w) = @_; problem("$w: \"", ($v // 'null'), "\" is not a semantic version") unless is_version($v); }
sub list_of
{
	my ($ok, $what) = @_;
	return sub {
		my ($v, $w) = @_;
		my @l = ref $v eq 'ARRAY' ? @$v : ($v);
		problem("$w: an empty list") if ref $v eq 'ARRAY' && !@l;
		for my $e (@l) { problem("$w: \"", ($e // 'null'), "\" is not $what") unless $ok->($e); }
	};
}

my %top = (
	name => sub { my ($v, $w) = @_; problem("$w: not a term (2+ characters, no space, slash or control)") unless is_term($v); },
	abstract => \&string_check,
	description => \&string_check,
	version => \&version_check,
	maintainer => list_of(sub { is_string($_[0]) && length $_[0] }, 'a maintainer'),
	license => sub {
		my ($v, $w) = @_;
		if (ref $v eq 'HASH')
		{
			problem("$w: an empty object") unless %$v;
			for my $k (keys %$v) { problem("$w.$k: not a URI") unless is_uri($v->{$k}); }
			return;
		}
		list_of(sub { is_string($_[0]) && $licenses{ $_[0] } }, 'a license name of the spec')->($v, $w);
	},
	provides => sub {
		my ($v, $w) = @_;
		unless (ref $v eq 'HASH' && %$v) { problem("$w: not a non-empty object"); return; }
		for my $ext (sort keys %$v)
		{
			problem("$w: extension name \"$ext\" is not a term") unless is_term($ext);
			check_keys("$w.$ext", $v->{$ext}, {
				file => sub {
					my ($f, $fw) = @_;
					string_check($f, $fw);
					problem("$fw: \"$f\" does not exist in the distribution") if is_string($f) && !-f "$dir/$f";
				},
				docfile => sub {
					my ($f, $fw) = @_;
					string_check($f, $fw);
					problem("$fw: \"$f\" does not exist in the distribution") if is_string($f) && !-f "$dir/$f";
				},
				version => \&version_check,
				abstract => \&string_check,
			}, [qw(file version)]);
		}
	},
	'meta-spec' => sub {
		my ($v, $w) = @_;
		check_keys($w, $v, {
			version => sub { my ($s, $sw) = @_; problem("$sw: \"", ($s // 'null'), "\" is not 1.0.0") unless is_string($s) && $s =~ /^1\.0\.\d+$/; },
			url => \&uri_check,
		}, ['version']);
	},
	generated_by => \&string_check,
	tags => list_of(\&is_tag, 'a tag (1-255 characters, no slash or control)'),
	no_index => sub {
		my ($v, $w) = @_;
		my $paths = list_of(sub { is_string($_[0]) && length $_[0] }, 'a path');
		check_keys($w, $v, { file => $paths, directory => $paths }, []);
	},
	release_status => sub {
		my ($v, $w) = @_;
		problem("$w: not one of stable, testing, unstable") unless is_string($v) && $v =~ /^(stable|testing|unstable)$/;
	},
	resources => sub {
		my ($v, $w) = @_;
		check_keys($w, $v, {
			homepage => \&uri_check,
			bugtracker => sub {
				my ($b, $bw) = @_;
				check_keys($bw, $b, { web => \&uri_check, mailto => \&string_check }, []);
				problem("$bw: names neither web nor mailto") if ref $b eq 'HASH' && !exists $b->{web} && !exists $b->{mailto};
			},
			repository => sub {
				my ($r, $rw) = @_;
				check_keys($rw, $r, { url => \&uri_check, web => \&uri_check, type => \&string_check }, []);
			},
		}, []);
	},
	prereqs => sub {
		my ($v, $w) = @_;
		my $relations = sub {
			my ($p, $pw) = @_;
			my $reqs = sub {
				my ($r, $rw) = @_;
				unless (ref $r eq 'HASH') { problem("$rw: not an object"); return; }
				for my $name (sort keys %$r)
				{
					problem("$rw.$name: \"", ($r->{$name} // 'null'), "\" is not a version or version range")
					  unless is_range($r->{$name});
				}
			};
			check_keys($pw, $p, { map { $_ => $reqs } qw(requires recommends suggests conflicts) }, []);
		};
		check_keys($w, $v, { map { $_ => $relations } qw(configure build test runtime develop) }, []);
	},
);
check_keys('META', $meta, \%top, [qw(name abstract version maintainer license provides meta-spec)])
  if ref $meta eq 'HASH';

if (@problems) { print "$file: $_\n" for @problems; exit 1; }
print "$file: valid (PGXN Meta Spec 1.0.0)\n";
exit 0;
