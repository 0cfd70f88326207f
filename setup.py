from setuptools import find_packages, setup

setup(
    name="keras_optreg",
    version="0.1.0",
    description='The lecture "Initialization, Optimization, and Regularization" as tested Keras 3 components',
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["keras_optreg", "keras_optreg.*", "spec"]),
    install_requires=["tensorflow>=2.21", "keras>=3.15", "numpy"],
    extras_require={
        # matplotlib and scikit-learn: tests/test_demo.py runs the demo (figure, bundled digits data set),
        # tests/test_examples.py the example scripts
        "test": ["hypothesis>=6.100", "pytest>=8", "scipy", "matplotlib", "scikit-learn"],
        "conformance": ["hypothesis>=6.100"],
        "bench": ["pytest>=8", "pytest-benchmark>=4"],
        "examples": ["matplotlib", "scikit-learn"],
    },
)
