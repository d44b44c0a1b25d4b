#!/bin/sh
# One command: builds Kinfer and llama.cpp, writes the models, runs every measurement.
# Options: see bench/run.py --help.
exec python3 "$(dirname "$0")/run.py" "$@"
