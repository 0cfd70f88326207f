"""Pure ``keras.ops`` functions: the math of every component, with no Variables and no randomness.

Random draws (masks, offsets, angles, normal or uniform samples) are arguments, so that the same
function is checked against ``spec/`` with the same draws. The Keras classes are thin shells over
these functions.
"""
