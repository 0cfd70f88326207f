"""Entry point of ``python -m keras_optreg.demo``; see :mod:`keras_optreg.demo.cli`."""

from keras_optreg.demo.cli import main

raise SystemExit(main())
