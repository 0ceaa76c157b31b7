# Two commands: `make demo` (the whole job on the built-in data) and
# `make test`. Both install what is missing first; a second run installs nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
ENV_STAMP := $(VENV)/.wise-env
DATA := data/shapes
WORK := work_dirs/demo
SHAPES_ARGS ?= --seed 0  # the generator's defaults are the demo's data

.PHONY: env test demo bench clean-demo

env: $(ENV_STAMP)

$(ENV_STAMP): requirements.txt tools/setup/install_env.sh tools/setup/build_mmcv.sh
	PYTHON=$(PYTHON) bash tools/setup/install_env.sh $(VENV)
	touch $@

test: env
	$(PY) -m pytest tests -q

# ---- demo: every stage is a file target, so fresh outputs are reused -------
$(DATA)/ImageSets/Segmentation/val.txt: tools/make_shapes_dataset.py | env
	$(PY) tools/make_shapes_dataset.py $(DATA) $(SHAPES_ARGS)

$(DATA)/annotations/val_instances.json: $(DATA)/ImageSets/Segmentation/val.txt tools/dataset_converters/voc_to_coco.py
	$(PY) tools/dataset_converters/voc_to_coco.py $(DATA) --classes-file $(DATA)/classes.txt --splits train val

FULL_CFG := configs/wise/demo/mask-rcnn_r18_shapes_full.py
$(WORK)/full/last_checkpoint: $(DATA)/annotations/val_instances.json $(FULL_CFG) configs/wise/mask-rcnn_r50_voc_full.py
	$(PY) tools/train.py $(FULL_CFG) --work-dir $(WORK)/full

PRM_CFG := configs/wise/demo/prm_r18_shapes.py
$(WORK)/prm/last_checkpoint: $(DATA)/annotations/val_instances.json $(PRM_CFG) configs/wise/prm_r50_voc.py
	$(PY) tools/train.py $(PRM_CFG) --work-dir $(WORK)/prm

demo: $(WORK)/full/last_checkpoint $(WORK)/prm/last_checkpoint
	$(PY) tools/test.py $(PRM_CFG) $$(cat $(WORK)/prm/last_checkpoint) --work-dir $(WORK)/prm/test
	$(PY) tools/vis_peaks.py $(PRM_CFG) $$(cat $(WORK)/prm/last_checkpoint) --out-dir $(WORK)/prm/vis --num 8
	$(PY) tools/test.py $(FULL_CFG) $$(cat $(WORK)/full/last_checkpoint) --work-dir $(WORK)/full/test \
	  --cfg-options test_evaluator.outfile_prefix=$(WORK)/full/metrics

bench: env
	$(PY) bench/run.py

clean-demo:
	rm -rf $(DATA) $(WORK)
