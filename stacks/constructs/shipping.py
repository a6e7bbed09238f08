"""What never ships in a code asset or bundle, in a module without CDK imports: `make bench` lays the
code out as the Lambda code asset does without starting jsii."""

# Tests run on the build machine; bytecode and caches are built for it.
BUILD_MACHINE_ONLY = (
    "tests",
    "conftest.py",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
)
# The Lambda code asset also leaves out the requirements files: they are the layer's source.
CODE_EXCLUDES = (*BUILD_MACHINE_ONLY, "requirements*.txt")
