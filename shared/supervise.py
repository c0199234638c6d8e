"""`python -m shared.supervise -c CONF`: supervisord, not dumpable (see shared/undumpable.py).

supervisord holds HF_TOKEN in its environment for the worker it starts; started
this way, no other process of our user can read it from /proc. Arguments are
supervisord's own.
"""

from shared.undumpable import make_undumpable

make_undumpable()

from supervisor.supervisord import main  # noqa: E402

if __name__ == "__main__":
    main()
