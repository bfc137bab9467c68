"""The LDR restoration network (../shared/papers/ldr.md, section 3.2), one module per block."""
from .config import VARIANTS, build_model, load_config
from .network import LDRNet, LDROutput, PriorCache

__all__ = ["VARIANTS", "LDRNet", "LDROutput", "PriorCache", "build_model", "load_config"]
