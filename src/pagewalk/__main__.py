import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still importing pagewalk
    print("pagewalk: interrupted by SIGINT", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
