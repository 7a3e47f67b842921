"""courses"""

from . import bp

_ = bp
