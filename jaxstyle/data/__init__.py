"""Datasets (toyfaces, image folders and zips, TFDS) and sharded global batches."""

from jaxstyle.data.source import DataError, Source
