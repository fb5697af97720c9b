#!/usr/bin/env bash
# Layer guard: the cache core never uses the terminal libraries, and only the storage layer
# uses the AWS SDK. Fails naming each file (and line) that crosses a layer.
#   - ratatui / crossterm: only under src/tui/ and in src/main.rs;
#   - aws_sdk_s3, aws_config, aws_sigv4, aws_credential_types, aws_smithy_*: only under
#     src/storage/.
# A use is a Rust path into the crate (`ratatui::…`, `aws_sdk_s3::…`) or a `use`/`extern crate`
# of it. Log filter strings such as "aws_smithy_runtime=off" (src/main.rs) name tracing
# targets, not code, and are not uses.
set -euo pipefail
cd "$(dirname "$0")/.."

uses() { # <crate-name regex>: the pattern of a Rust use of those crates
  printf '(^|[^A-Za-z0-9_])(%s)::|(^|[^A-Za-z0-9_])(use|extern crate)[[:space:]]+(%s)([^A-Za-z0-9_]|$)' "$1" "$1"
}

status=0
report() { # <rule> <grep output>
  [ -n "$2" ] || return 0
  echo "layers: $1:" >&2
  printf '%s\n' "$2" | sed 's/^/  /' >&2
  status=1
}

tui=$(uses 'ratatui|crossterm')
found=$(grep -rnE --include='*.rs' "$tui" src | grep -vE '^src/(tui/|main\.rs:)' || true)
report "ratatui/crossterm used outside src/tui/ and src/main.rs" "$found"

aws=$(uses 'aws_sdk_s3|aws_config|aws_sigv4|aws_credential_types|aws_smithy_[A-Za-z0-9_]+')
found=$(grep -rnE --include='*.rs' "$aws" src | grep -vE '^src/storage/' || true)
report "AWS SDK used outside src/storage/" "$found"

[ "$status" = 0 ] && echo "layers: ok (terminal code only in src/tui/ and src/main.rs, AWS SDK only in src/storage/)"
exit "$status"
