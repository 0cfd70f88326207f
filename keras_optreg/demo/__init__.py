"""``python -m keras_optreg.demo``: the lecture's regularization and optimizer study on a small CNN.

Modules: ``data`` (scikit-learn's bundled 8x8 digits, or a local mnist.npz; nothing downloads),
``models`` (the CNN and its regularized variants), ``experiments`` (the named experiments and
their training), ``report`` (results table, best epoch i*, loss-curve figure), ``cli`` (flags).
"""
