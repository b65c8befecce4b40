"""python -m tinynet.assign make|check: see tinynet/assign/__init__.py."""
import argparse
import sys
from pathlib import Path

from . import __doc__ as overview
from .grade import grade, score_table
from .student import TASK_LIST, make_student_copy
from .tasks import DEFAULT_TASKS, load_tasks, read_task_list


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinynet.assign", description=overview,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="write a student copy with the tasks' functions stripped")
    make.add_argument("--tasks", type=Path, default=DEFAULT_TASKS, help="a TOML task list (default: the course's)")
    make.add_argument("--out", type=Path, required=True, help="a new folder for the student copy")
    check = commands.add_parser("check", help="run each task's tests in a student copy and print the scores")
    check.add_argument("student", type=Path, help="the student copy")
    args = parser.parse_args(argv)
    try:
        if args.command == "make":
            tasks = load_tasks(args.tasks)
            make_student_copy(tasks, args.out)
            print(f"wrote {args.out} with {len(tasks)} tasks; grade it with python -m tinynet.assign check {args.out}")
            return 0
        if not (args.student / TASK_LIST).exists():
            parser.error(f"{args.student} is not a student copy ({TASK_LIST} is missing)")
        scores = grade(args.student, read_task_list(args.student / TASK_LIST))
        print(score_table(scores))
        return 0 if all(s.complete for s in scores) else 1
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        sys.exit(f"python -m tinynet.assign: {error}")


if __name__ == "__main__":
    sys.exit(main())
