"""Datasets (toyfaces, image folders and zips, TFDS) and sharded global batches."""

from jaxstyle.data import toyfaces
from jaxstyle.data.registry import open_source
from jaxstyle.data.source import DataError, Source
