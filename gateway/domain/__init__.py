"""Framework-free domain: entities, enums, keys, requests and the error tree."""

from .enums import *  # noqa: F403
from .errors import *  # noqa: F403
from .keys import *  # noqa: F403
from .models import *  # noqa: F403
from .requests import *  # noqa: F403
