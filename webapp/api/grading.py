"""grading"""

from . import bp

_ = bp
