"""python -m tinynet.assign make|check|check-class|gradescope|gradescope-run: see tinynet/assign/__init__.py."""
import argparse
import sys
from pathlib import Path

from . import __doc__ as overview
from .grade import Grader
from .gradescope import export_autograder, run_for_gradescope
from .report import score_table, write_class_results
from .sandbox import Limits, isolation
from .student import make_student_copy
from .tasks import DEFAULT_TASKS, hidden_cases_path, load_hidden_cases, load_tasks


def grading_options(parser):
    parser.add_argument("--tasks", type=Path, default=DEFAULT_TASKS, help="the instructor's TOML task list "
                        "(default: the course's); never read from the submission")
    parser.add_argument("--hidden", type=Path, help="hidden cases (default: <tasks>.hidden.toml when it exists)")
    parser.add_argument("--public-only", action="store_true", help="run the public cases only")
    parser.add_argument("--timeout", type=float, default=Limits.seconds, help="seconds per task (default %(default)s)")
    parser.add_argument("--memory", type=float, default=Limits.memory_bytes / 2**30,
                        help="GiB of address space per task (default %(default)s)")
    parser.add_argument("--seed", type=int, help="draw the cases' inputs from this seed (default: a random one)")
    parser.add_argument("--jobs", type=int, help="tasks graded at once (default: one per core)")
    parser.add_argument("--task", action="append", dest="only", metavar="ID", help="grade only this task "
                        "(repeat for several)")


def make_grader(args) -> Grader:
    tasks = load_tasks(args.tasks)
    hidden_path = args.hidden or hidden_cases_path(args.tasks)
    if args.hidden and not args.hidden.exists():
        raise FileNotFoundError(f"{args.hidden} does not exist")
    hidden = None if args.public_only or not hidden_path.exists() else load_hidden_cases(hidden_path, tasks)
    limits = Limits(seconds=args.timeout, memory_bytes=int(args.memory * 2**30))
    print(f"isolation: {isolation()}", file=sys.stderr)
    return Grader(tasks, hidden, limits, args.seed, args.jobs, args.only)


def submissions_in(folder: Path) -> list:
    """The submission folders in a class folder (each sub-folder, symlinks skipped), sorted by name."""
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of submissions")
    found = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    if not found:
        raise ValueError(f"{folder} holds no submission folders")
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tinynet.assign", description=overview,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="write a student copy with the tasks' functions stripped")
    make.add_argument("--tasks", type=Path, default=DEFAULT_TASKS, help="a TOML task list (default: the course's)")
    make.add_argument("--out", type=Path, required=True, help="a new folder for the student copy")
    check = commands.add_parser("check", help="grade one submission and print its score table")
    check.add_argument("submission", type=Path, help="the student's copy (a folder)")
    grading_options(check)
    whole_class = commands.add_parser("check-class", help="grade every submission folder in a folder")
    whole_class.add_argument("folder", type=Path, help="one sub-folder per student")
    whole_class.add_argument("--out", type=Path, required=True, help="where scores.csv, scores.json and "
                             "feedback/<student>.txt go")
    grading_options(whole_class)
    export = commands.add_parser("gradescope", help="write the assignment as a Gradescope autograder (a zip to upload)")
    export.add_argument("--tasks", type=Path, default=DEFAULT_TASKS, help="a TOML task list (default: the course's); "
                        "its hidden cases go along when <tasks>.hidden.toml exists")
    export.add_argument("--out", type=Path, required=True, help="the zip to write, e.g. autograder.zip")
    on_gradescope = commands.add_parser("gradescope-run", help="grade one submission and write Gradescope's "
                                        "results.json (what the autograder's run_autograder runs)")
    on_gradescope.add_argument("--submission", type=Path, required=True, help="the student's files "
                               "(/autograder/submission on Gradescope)")
    on_gradescope.add_argument("--results", type=Path, required=True, help="the results.json to write "
                               "(/autograder/results/results.json on Gradescope)")
    grading_options(on_gradescope)
    args = parser.parse_args(argv)
    try:
        if args.command == "make":
            tasks = load_tasks(args.tasks)
            make_student_copy(tasks, args.out)
            print(f"wrote {args.out} with {len(tasks)} tasks; grade it with python -m tinynet.assign check {args.out}")
            return 0
        if args.command == "check":
            if not args.submission.is_dir():
                parser.error(f"{args.submission} is not a folder (a student copy)")
            scores = make_grader(args).grade(args.submission)
            print(score_table(scores))
            return 0 if all(s.complete for s in scores) else 1
        if args.command == "gradescope":
            export_autograder(args.tasks, args.out)
            print(f"wrote {args.out}: upload it as the assignment's autograder on Gradescope (Configure Autograder)")
            return 0
        if args.command == "gradescope-run":
            if not args.submission.is_dir():
                parser.error(f"{args.submission} is not a folder: Gradescope puts the student's files in "
                             "/autograder/submission, and run_autograder reads them from $AUTOGRADER_ROOT/submission")
            print(run_for_gradescope(make_grader(args), args.submission, args.results, isolation()))
            return 0
        submissions = submissions_in(args.folder)
        grader = make_grader(args)
        results = grader.grade_many(submissions, progress=lambda done, total: print(
            f"\rgraded {done} of {total} tasks", end="" if done < total else "\n", file=sys.stderr))
        by_student = {s.name: scores for s, scores in zip(submissions, results)}
        write_class_results(by_student, args.out, grader.seed, isolation())
        complete = sum(all(s.complete for s in scores) for scores in results)
        print(f"{complete} of {len(results)} submissions complete; scores in {args.out / 'scores.csv'}")
        return 0
    except (OSError, ValueError, KeyError) as error:
        sys.exit(f"python -m tinynet.assign: {error}")


if __name__ == "__main__":
    sys.exit(main())
