"""Several forget runs, one after the other, in the processes of one `accelerate launch` (dist_helpers.launch_runs):

    accelerate launch ... tests/distributed/launch_runs.py --config-name forget_tiny.yaml a=1 ... --next-run --config-name ...

Each run is what forget.py does with its arguments (safeeraser.cli's forget command); a run that fails ends the
launch with its exit code."""
import sys

from safeeraser.cli import main

if __name__ == "__main__":
    runs, current = [], []
    for arg in sys.argv[1:]:
        if arg == "--next-run":
            runs.append(current)
            current = []
        else:
            current.append(arg)
    runs.append(current)
    for args in runs:
        code = main(["forget", *args])
        sys.stdout.flush()
        if code:
            raise SystemExit(code)
    # Every run's files are written: end without the interpreter's teardown of torch, transformers and peft
    # (~2 s of CPU in each of the two processes, after the runs' ~5 s), as forget.py's result would not change
    import os

    sys.stderr.flush()
    os._exit(0)
