"""The scalar tags in a TensorBoard log folder, read with TensorBoard's own EventAccumulator (not the worker's writer).

Called as ``python tensorboard_tags.py LOG_DIR``; prints the tags sorted, separated by spaces.
"""

import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main(log_dir: str) -> list[str]:
    ea = EventAccumulator(log_dir)
    ea.Reload()
    return sorted(ea.Tags()["scalars"])


if __name__ == "__main__":
    print(" ".join(main(sys.argv[1])))
