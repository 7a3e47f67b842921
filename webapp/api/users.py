"""users"""

from . import bp

_ = bp
