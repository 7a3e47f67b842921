"""content"""

from . import bp

_ = bp
