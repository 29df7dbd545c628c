# The prologue of every stage script (steps/, local/), sourced once it has set $usage and a
# variable, with its default, for every option. Kaldi-style option parsing:
#   --some-option VALUE   sets some_option=VALUE (an option with no variable is an error);
#   --some-flag           sets some_flag=true where its default is false (no value follows);
#   -h, --help            prints $usage and exits 0.
# Every option given is also appended to the array given_options, for stages that forward
# what they were given (but those named in $script_options, the script's own). Parsing stops
# at the first word that is not an option; with $nargs set, exactly that many positional
# arguments must follow (else $usage and exit 1).
given_options=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) echo "$usage"; exit 0 ;;
    --*)
      _name=${1#--}; _name=${_name//-/_}
      if [[ ! "$_name" =~ ^[a-z][a-z0-9_]*$ ]] || [[ " usage given_options nargs script_options " == *" $_name "* ]] \
          || [ -z "${!_name+set}" ]; then
        echo "$0: unknown option $1" >&2; echo "$usage" >&2; exit 1
      fi
      if [ "${!_name}" = false ]; then
        printf -v "$_name" true; given_options+=("$1"); shift; continue
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      printf -v "$_name" '%s' "$2"
      [[ " ${script_options:-} " == *" $_name "* ]] || given_options+=("$1" "$2")
      shift 2 ;;
    *) break ;;
  esac
done
unset _name
if [ -n "${nargs:-}" ] && [ $# -ne "$nargs" ]; then echo "$usage" >&2; exit 1; fi
# then the project's environment: its venv on PATH, C collation, unbuffered Python
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/path.sh"
