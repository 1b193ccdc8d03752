# Checks of what a command printed. Fixed text (headers, messages) is
# compared exactly; generated parts (IPs, ages, random suffixes) through
# the regular expressions below. Every mismatch ends in `fail`.

RE_AGE='[0-9]+[smhd]([0-9]+[smh])?'
RE_IP='[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}'
RE_HASH='[a-z0-9]{6,10}'
RE_SUFFIX='[a-z0-9]{5}'

# expect_text WHAT EXPECTED [TEXT]: exact equality (default TEXT: OUT).
expect_text() {
  local got=${3-$OUT}
  [ "$got" == "$2" ] || fail "$1" "$(quote_block "$2")" "$got"
}

# expect_lines WHAT TEXT RE...: TEXT has exactly one line per RE, in order,
# each matching its RE as a whole.
expect_lines() {
  local what=$1 text=$2
  shift 2
  local -a lines
  mapfile -t lines <<<"$text"
  [ "${#lines[@]}" -eq $# ] ||
    fail "$what" "$# line(s) matching: $(printf '/%s/ ' "$@")" "${#lines[@]} line(s):"$'\n'"$text"
  local i=0 re
  for re in "$@"; do
    [[ ${lines[i]} =~ ^($re)$ ]] ||
      fail "$what" "line $((i + 1)) to match /$re/" "${lines[i]}"
    i=$((i + 1))
  done
}

# expect_some_line WHAT RE [TEXT]: at least one line matches RE.
expect_some_line() {
  local text=${3-$OUT} line
  while IFS= read -r line; do
    [[ $line =~ ^($2)$ ]] && return 0
  done <<<"$text"
  fail "$1" "a line matching /$2/" "$text"
}

# expect_no_line WHAT RE [TEXT]: no line matches RE.
expect_no_line() {
  local text=${3-$OUT} line
  while IFS= read -r line; do
    [[ $line =~ ^($2)$ ]] && fail "$1" "no line matching /$2/" "$line"
  done <<<"$text"
  return 0
}

# count_lines RE [TEXT] -> how many lines match RE as a whole.
count_lines() {
  local text=${2-$OUT} line n=0
  while IFS= read -r line; do
    [[ $line =~ ^($1)$ ]] && n=$((n + 1))
  done <<<"$text"
  echo "$n"
}

# expect_same_set WHAT EXPECTED GOT: two whitespace- or comma-separated
# lists hold the same elements (order does not matter).
expect_same_set() {
  local a b
  a=$(tr ', ' '\n\n' <<<"$2" | sed '/^$/d' | sort | tr '\n' ' ')
  b=$(tr ', ' '\n\n' <<<"$3" | sed '/^$/d' | sort | tr '\n' ' ')
  [ "$a" == "$b" ] || fail "$1" "{ ${a% }}" "{ ${b% }}"
}

quote_block() {
  if [[ $1 == *$'\n'* ]]; then
    printf '\n%s\n   ' "$(sed 's/^/    > /' <<<"$1")"
  else
    printf "'%s'" "$1"
  fi
}

# parse_table TEXT: reads one kubectl table by its header's column
# offsets (columns are at least two blanks apart; a header name may hold
# one blank, as in NOMINATED NODE). Sets TABLE_HEADER (names joined by
# `|`), TABLE_ROWS, CELL[<row>,<name>] (rows from 1) and TABLE_ERROR (the
# first cell that does not start exactly under its header, or a trailing
# blank; empty when aligned).
declare -gA CELL=()
TABLE_HEADER=''
TABLE_ROWS=0
TABLE_ERROR=''
parse_table() {
  local -a lines starts=() names=()
  mapfile -t lines <<<"$1"
  local head=${lines[0]} i n k s e cols r line
  n=${#head}
  for ((i = 0; i < n; i++)); do
    [[ ${head:i:1} == ' ' ]] && continue
    if ((i == 0)) || { ((i >= 2)) && [[ ${head:i-2:2} == '  ' ]]; }; then
      starts+=("$i")
    fi
  done
  cols=${#starts[@]}
  for ((k = 0; k < cols; k++)); do
    s=${starts[k]}
    if ((k + 1 < cols)); then e=${starts[k + 1]}; else e=$n; fi
    trim_right "${head:s:e-s}"
    names+=("$REPLY")
  done
  TABLE_HEADER=$(IFS='|'; echo "${names[*]}")
  TABLE_ROWS=$((${#lines[@]} - 1))
  TABLE_ERROR=''
  CELL=()
  [[ $head != *' ' ]] || TABLE_ERROR="trailing blanks in the header"
  for ((r = 1; r <= TABLE_ROWS; r++)); do
    line=${lines[r]}
    if [[ $line == *' ' ]] && [ -z "$TABLE_ERROR" ]; then
      TABLE_ERROR="trailing blanks in row $r: '$line'"
    fi
    for ((k = 0; k < cols; k++)); do
      s=${starts[k]}
      if ((k + 1 < cols)); then e=${starts[k + 1]}; else e=${#line}; fi
      if ((k > 0)) && [ -z "$TABLE_ERROR" ] &&
        { [[ ${line:s-1:1} != ' ' ]] || [[ ${line:s:1} == ' ' ]] || [ -z "${line:s:1}" ]; }; then
        TABLE_ERROR="row $r: column ${names[k]} does not start at offset $s under its header: '$line'"
      fi
      trim_right "${line:s:e-s}"
      CELL[$r,${names[k]}]=$REPLY
    done
  done
}

# check_table WHAT TEXT HEADER ROW...
#
# TEXT must be one kubectl table whose column names are exactly HEADER
# (`NAME|TYPE|CLUSTER-IP|EXTERNAL-IP|PORT(S)|AGE`), aligned like
# kubectl's, with one row per ROW in order. A ROW lists one regular
# expression per column, separated by `|` (so a ROW uses no
# alternation). Leaves the cells in CELL, as parse_table does.
check_table() {
  local what=$1 text=$2 header=$3
  shift 3
  parse_table "$text"
  [ "$TABLE_HEADER" == "$header" ] ||
    fail "$what: columns" "columns $header" "columns $TABLE_HEADER in:"$'\n'"$text"
  [ -z "$TABLE_ERROR" ] || fail "$what: alignment" "kubectl's column alignment" "$TABLE_ERROR"
  [ "$TABLE_ROWS" -eq $# ] || fail "$what: rows" "$# row(s)" "$TABLE_ROWS row(s):"$'\n'"$text"
  local -a names res
  IFS='|' read -r -a names <<<"$header"
  local r=1 k spec cell
  for spec in "$@"; do
    IFS='|' read -r -a res <<<"$spec"
    for ((k = 0; k < ${#names[@]}; k++)); do
      cell=${CELL[$r,${names[k]}]}
      [[ $cell =~ ^(${res[k]})$ ]] ||
        fail "$what: row $r, column ${names[k]}" "/${res[k]}/" "'$cell' in:"$'\n'"$text"
    done
    r=$((r + 1))
  done
}

# trim_right STRING: REPLY is STRING without trailing blanks (no fork).
trim_right() {
  REPLY=$1
  REPLY=${REPLY%"${REPLY##*[![:space:]]}"}
}

# column_values NAME -> the column's cells of the last parsed table, one
# per line.
column_values() {
  local r
  for ((r = 1; r <= TABLE_ROWS; r++)); do
    printf '%s\n' "${CELL[$r,$1]}"
  done
}
