"""Executable transcription of the lecture "Initialization, Optimization, and Regularization".

NumPy only, float64. :mod:`keras_optreg_spec.printed` holds eqs. (1)-(20) as printed, :mod:`keras_optreg_spec.corrected`
the forms of the cited sources, :mod:`keras_optreg_spec.errata` the differences, :mod:`keras_optreg_spec.algorithms` whole
optimizer steps and :mod:`keras_optreg_spec.unnumbered` the unnumbered techniques (dropout, input noise,
augmentation, early stopping). ``SPEC_IDS`` lists every id a test of the library must cover.
"""

from . import algorithms, corrected, errata, printed, unnumbered

EQUATIONS = {
    "eq01": (printed.eq01_glorot_uniform_bound, printed.eq01_glorot_uniform),
    "eq02": (printed.eq02_he_uniform_bound, printed.eq02_he_uniform),
    "eq03": (printed.eq03_truncated_normal_std, printed.eq03_truncated_normal),
    "eq04": (printed.eq04_minibatch_gradient,),
    "eq05": (printed.eq05_sgd_update,),
    "eq06": (printed.eq06_linear_decay,),
    "eq07": (printed.eq07_minibatch_gradient,),
    "eq08": (printed.eq08_momentum_velocity,),
    "eq09": (printed.eq09_momentum_update,),
    "eq10": (printed.eq10_minibatch_gradient,),
    "eq11": (printed.eq11_rmsprop_accumulator,),
    "eq12": (printed.eq12_rmsprop_update,),
    "eq13": (printed.eq13_minibatch_gradient,),
    "eq14": (printed.eq14_adam_first_moment,),
    "eq15": (printed.eq15_adam_second_moment,),
    "eq16": (printed.eq16_adam_first_moment_hat,),
    "eq17": (printed.eq17_adam_second_moment_hat,),
    "eq18": (printed.eq18_adam_update,),
    "eq19": (printed.eq19_weight_norm_penalty,),
    "eq20": (printed.eq20_batchnorm_normalize, printed.eq20_batchnorm_affine),
}

UNNUMBERED = {
    "dropout": (unnumbered.dropout_srivastava, unnumbered.dropout_inverted),
    "input_noise": (unnumbered.input_noise,),
    "random_crop": (unnumbered.random_crop,),
    "random_flip": (unnumbered.random_flip_left_right, unnumbered.random_flip_up_down),
    "random_rotation": (unnumbered.random_rotation_bilinear, unnumbered.random_rotation, unnumbered.fill_index),
    "early_stopping": (unnumbered.early_stopping,),
}

#: optimizer variants Keras users select by argument (``initial_accumulator_value``, ``centered``, ``amsgrad``,
#: ``weight_decay``)
VARIANTS = {
    "adagrad": (algorithms.alg_adagrad_step,),
    "centered_rmsprop": (corrected.centered_rmsprop_mean_gradient, corrected.centered_rmsprop_update,
                         algorithms.alg_centered_rmsprop_step),
    "amsgrad": (corrected.amsgrad_second_moment_max, algorithms.alg_amsgrad_step),
    "adamw": (algorithms.alg_adamw_step,),
}

SPEC_IDS = tuple(EQUATIONS) + tuple(UNNUMBERED) + tuple(VARIANTS)

__all__ = ["EQUATIONS", "UNNUMBERED", "VARIANTS", "SPEC_IDS", "algorithms", "corrected", "errata", "printed",
           "unnumbered"]
