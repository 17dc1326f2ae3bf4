#!/usr/bin/env bash
# scripts/test.sh — Siyu's one test command (CI runs it through .ci/run).
#
#   scripts/test.sh                         # everything: checks + go test ./...
#   scripts/test.sh -run TestX ./internal/db/
#
# Steps: install missing tools (chromium, PostgreSQL, gcc for -race,
# staticcheck), start a throwaway PostgreSQL cluster on a Unix socket,
# gofmt/go vet/staticcheck, then `go test -race -count=1`.
#
# Arguments are passed to `go test`. Package patterns among them (./..., ../x,
# github.com/siyu-dev/siyu/...) replace ./... for go test AND narrow gofmt,
# go vet and staticcheck to those packages; with no package pattern, ./... is
# used. Patterns are relative to the repository root (the script cd's there).
#
# Environment:
#   SIYU_TEST_POSTGRES  PostgreSQL URL for the tests. If already set, it is used
#                       as-is and no cluster is started.
#   SIYU_TEST_SHORT=1   Skip PostgreSQL entirely (no install, no cluster,
#                       SIYU_TEST_POSTGRES unset): SQLite-only, for quick local
#                       runs. CI never sets it.
#   SIYU_CHROMIUM       Browser for browser tests; defaults to /usr/bin/chromium
#                       when that exists.
#
# Nothing is printed after go test's own output, so its closing lines stay last.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2
PG_WANT=15

cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "go not found (expected on PATH or at /usr/local/go/bin)"

is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true

short=false
[[ ${SIYU_TEST_SHORT:-} == 1 ]] && short=true

# ---------------------------------------------------------------------------
# Arguments: split out package patterns.
go_args=("$@")
pkgs=()
for a in "$@"; do
	[[ $a == -args ]] && break # the rest belongs to the test binary
	case $a in
	. | ./* | ../* | github.com/siyu-dev/siyu | github.com/siyu-dev/siyu/*) pkgs+=("$a") ;;
	esac
done
if [[ ${#pkgs[@]} -eq 0 ]]; then
	pkgs=(./...)
	go_args+=(./...)
fi

# ---------------------------------------------------------------------------
say "ensuring tools"

find_initdb() {
	local f
	if [[ -x /usr/lib/postgresql/$PG_WANT/bin/initdb ]]; then
		echo "/usr/lib/postgresql/$PG_WANT/bin/initdb"
		return 0
	fi
	for f in /usr/lib/postgresql/*/bin/initdb; do
		[[ -x $f ]] && { echo "$f"; return 0; }
	done
	command -v initdb 2>/dev/null
}

need_pg=false
if ! $short && [[ -z ${SIYU_TEST_POSTGRES:-} ]]; then
	need_pg=true
fi

apt_pkgs=()
[[ -x /usr/bin/chromium ]] || apt_pkgs+=(chromium)
if $need_pg && ! find_initdb >/dev/null; then
	apt_pkgs+=("postgresql-$PG_WANT")
fi
# -race needs cgo, hence a C compiler and libc headers.
cc=$(go env CC)
command -v "${cc%% *}" >/dev/null 2>&1 || apt_pkgs+=(gcc libc6-dev)
# The Go module proxy is HTTPS.
[[ -e /etc/ssl/certs/ca-certificates.crt ]] || apt_pkgs+=(ca-certificates)

if [[ ${#apt_pkgs[@]} -gt 0 ]]; then
	if $is_root && command -v apt-get >/dev/null 2>&1; then
		say "apt-get install ${apt_pkgs[*]}"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y "${apt_pkgs[@]}"
	else
		say "warning: missing ${apt_pkgs[*]} and cannot apt-get install (not root); continuing"
	fi
fi

gobin=$(go env GOBIN)
if [[ -z $gobin ]]; then
	gopath=$(go env GOPATH)
	gobin="${gopath%%:*}/bin"
fi
staticcheck="$gobin/staticcheck"
if [[ ! -x $staticcheck ]]; then
	say "go install honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

export CGO_ENABLED=1 # required by -race
command -v "${cc%% *}" >/dev/null 2>&1 || die "no C compiler ($cc): go test -race needs cgo; install gcc"

if [[ -z ${SIYU_CHROMIUM:-} && -x /usr/bin/chromium ]]; then
	export SIYU_CHROMIUM=/usr/bin/chromium
fi

# ---------------------------------------------------------------------------
# Throwaway PostgreSQL cluster.
pg_dir=""
pg_user=""
pg_bin=""

# as_pg CMD... runs CMD inside $pg_dir as the cluster owner (PostgreSQL will
# not run as root). cd first: the owner may not be able to read our cwd.
as_pg() {
	if [[ -z $pg_user ]]; then
		(cd "$pg_dir" && "$@")
	elif command -v runuser >/dev/null 2>&1; then
		(cd "$pg_dir" && runuser -u "$pg_user" -- "$@")
	else
		(cd "$pg_dir" && su -s /bin/bash "$pg_user" -c "$(printf '%q ' "$@")")
	fi
}

cleanup() {
	local rc=$?
	set +e
	if [[ -n $pg_dir && -d $pg_dir ]]; then
		if [[ -f $pg_dir/data/postmaster.pid ]]; then
			local pid
			pid=$(head -n1 "$pg_dir/data/postmaster.pid" 2>/dev/null)
			as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1
			if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
				kill -KILL "$pid" 2>/dev/null
			fi
		fi
		rm -rf "$pg_dir"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if $short; then
	say "SIYU_TEST_SHORT=1: skipping PostgreSQL (SQLite only)"
	unset SIYU_TEST_POSTGRES
elif [[ -n ${SIYU_TEST_POSTGRES:-} ]]; then
	say "using SIYU_TEST_POSTGRES from the environment"
else
	initdb=$(find_initdb) || die "PostgreSQL server binaries (initdb) not found; install postgresql-$PG_WANT or set SIYU_TEST_POSTGRES / SIYU_TEST_SHORT=1"
	pg_bin=$(dirname "$initdb")
	[[ -x $pg_bin/pg_ctl ]] || die "$pg_bin/pg_ctl not found"

	# Unix socket paths are limited to ~107 bytes and pg_ctl -o goes through a
	# shell, so keep the directory short and free of spaces.
	tmp_base=${TMPDIR:-/tmp}
	if [[ ${#tmp_base} -gt 60 || $tmp_base == *[[:space:]]* || ! -d $tmp_base ]]; then
		tmp_base=/tmp
	fi
	pg_dir=$(mktemp -d "$tmp_base/siyu-pg.XXXXXXXX")

	if $is_root; then
		if id -u postgres >/dev/null 2>&1; then
			pg_user=postgres
		else
			id -u siyutest >/dev/null 2>&1 ||
				useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin siyutest
			pg_user=siyutest
		fi
		chown "$pg_user:" "$pg_dir"
	fi

	say "starting throwaway PostgreSQL ($pg_bin) in $pg_dir${pg_user:+ as $pg_user}"
	ms() { echo $(($(date +%s%N) / 1000000)); }
	t0=$(ms)
	init() { as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U siyu --auth=trust -E UTF8 --no-sync "$@" >"$pg_dir/initdb.log" 2>&1; }
	if ! init --locale=C.UTF-8; then
		as_pg rm -rf "$pg_dir/data"
		init --locale=C || { cat "$pg_dir/initdb.log" >&2; die "initdb failed"; }
	fi
	t1=$(ms)
	if ! as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 60 \
		-o "-k $pg_dir -c listen_addresses='' -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=300" \
		start >/dev/null; then
		cat "$pg_dir/postgres.log" >&2 || true
		die "PostgreSQL failed to start"
	fi
	t2=$(ms)
	say "PostgreSQL ready (initdb $((t1 - t0)) ms, start $((t2 - t1)) ms)"
	export SIYU_TEST_POSTGRES="postgres://siyu@/postgres?host=$pg_dir&sslmode=disable"
fi

# ---------------------------------------------------------------------------
say "gofmt -l"
list_go_files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# Tracked plus untracked-but-not-ignored files (new files count too).
		git ls-files -z --cached --others --exclude-standard -- '*.go'
	else
		# Not a git checkout (or git refuses it, e.g. dubious ownership).
		find . -name '*.go' -not -path './.git/*' -not -path './vendor/*' -print0
	fi
}
files=()
while IFS= read -r -d '' f; do
	f=${f#./}
	[[ -f $f ]] && files+=("$f")
done < <(list_go_files)

if [[ ${pkgs[*]} != ./... ]]; then
	# Narrow to the directories of the requested packages.
	declare -A want=()
	root=$(dirname "$(go env GOMOD)")
	while IFS= read -r d; do
		[[ -n $d ]] && want["${d#"$root"/}"]=1
	done < <(go list -e -f '{{.Dir}}' "${pkgs[@]}" 2>/dev/null)
	narrowed=()
	for f in "${files[@]}"; do
		d=$(dirname "$f")
		[[ $d == . ]] && d=$root
		[[ -n ${want[$d]:-} ]] && narrowed+=("$f")
	done
	files=("${narrowed[@]}")
fi

gofmt="$(go env GOROOT)/bin/gofmt"
if [[ ${#files[@]} -gt 0 ]]; then
	unformatted=$(printf '%s\0' "${files[@]}" | xargs -0 "$gofmt" -l) ||
		die "gofmt failed (syntax error?)"
	if [[ -n $unformatted ]]; then
		printf 'gofmt: these files need formatting (run gofmt -w):\n%s\n' "$unformatted" >&2
		exit 1
	fi
fi

say "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

say "staticcheck ${pkgs[*]}"
"$staticcheck" "${pkgs[@]}"

say "go test -race -count=1 ${go_args[*]}"
go test -race -count=1 "${go_args[@]}"
