"""Metadata and dependencies are in setup.cfg. This file only ships ador's study files and search
spaces inside the package (as ador/studies and ador/search_spaces), kept where they are in the
checkout."""
from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["ador", "ador.*"]), "ador.studies", "ador.search_spaces"],
      package_dir={"ador.studies": "studies", "ador.search_spaces": "search_spaces"})
