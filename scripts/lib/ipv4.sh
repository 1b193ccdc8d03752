# IPv4 arithmetic for the chapter scripts: whether an address is inside a
# CIDR and whether two CIDRs overlap. Pure bash, so a fresh machine needs
# no extra tool to decide whether the default CIDRs are free.

# ipv4_to_int 10.96.0.1 -> 174063617
ipv4_to_int() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# ipv4_is_address STRING: four decimal octets 0-255.
ipv4_is_address() {
  local re='^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$' i
  [[ $1 =~ $re ]] || return 1
  for i in 1 2 3 4; do
    ((BASH_REMATCH[i] <= 255)) || return 1
  done
}

# cidr_range 10.96.0.0/12 -> "first last" as integers (a bare address is /32).
cidr_range() {
  local addr=${1%/*} len=32
  [[ $1 == */* ]] && len=${1#*/}
  local ip mask
  ip=$(ipv4_to_int "$addr")
  mask=$(((0xFFFFFFFF << (32 - len)) & 0xFFFFFFFF))
  echo $((ip & mask)) $(((ip & mask) | (~mask & 0xFFFFFFFF)))
}

# ipv4_in_cidr 10.96.142.31 10.96.0.0/12
ipv4_in_cidr() {
  ipv4_is_address "$1" || return 1
  local ip first last
  ip=$(ipv4_to_int "$1")
  read -r first last < <(cidr_range "$2")
  ((ip >= first && ip <= last))
}

# cidr_overlaps 10.96.0.0/12 10.100.0.0/16
cidr_overlaps() {
  local f1 l1 f2 l2
  read -r f1 l1 < <(cidr_range "$1")
  read -r f2 l2 < <(cidr_range "$2")
  ((f1 <= l2 && f2 <= l1))
}
