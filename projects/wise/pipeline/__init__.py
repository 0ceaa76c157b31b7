"""The whole WISE chain as stages, from data to the results table
(``tools/pipeline.py`` is its command line).

- :mod:`.presets`: where each data set, its configs and outputs are;
- :mod:`.graph`: a preset's stages, their commands, what each reads and writes;
- :mod:`.runner`: runs the stages that are not fresh, side by side where they can be;
- :mod:`.table`: the results table, like the paper's;
- :mod:`.custom_configs`: the configs of a user's own data, derived from it.
"""
from .custom_configs import DEFAULT_DETECTOR, DETECTORS, Detector, write_custom_configs
from .graph import SHARED, build_stages
from .paths import CONFIGS, ROOT
from .presets import (DENSITY_RETRIEVAL, IMPROVED, SELECTIONS, Preset, custom_preset, presets,
                      wise_stage_name)
from .runner import RECORDS, RunOptions, run_pipeline, run_stage, run_step, source_commit
from .stage import Command, Stage, Step
from .table import PAPER, ROW_FILES, write_table

__all__ = ['RECORDS', 'CONFIGS', 'Command', 'DEFAULT_DETECTOR', 'DENSITY_RETRIEVAL',
           'DETECTORS', 'Detector', 'IMPROVED', 'PAPER', 'Preset', 'ROOT', 'ROW_FILES',
           'RunOptions', 'SELECTIONS', 'SHARED', 'Stage', 'Step', 'build_stages',
           'custom_preset', 'presets', 'run_pipeline', 'run_stage', 'run_step',
           'source_commit', 'wise_stage_name', 'write_custom_configs', 'write_table']
