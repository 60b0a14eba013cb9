"""The only part of the service that imports torch and `model`: the runner owning the device, the
batcher feeding it, and the engine tying them to one worker thread."""

from model.runtime import keep_freed_memory
from service.engine.batcher import Batcher, Done
from service.engine.engine import Engine
from service.engine.work import WorkItem, WorkOutput

__all__ = ["Batcher", "Done", "Engine", "WorkItem", "WorkOutput", "keep_freed_memory"]
