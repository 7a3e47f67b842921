"""learning"""

from . import bp

_ = bp
