# fly64 dose/overlap study. A fresh clone needs no manual step: every target
# depends on the venv stamp, which `make setup` builds once.
PYTHON      ?= python3
VENV        ?= .venv
ROOT        ?= study
DOSE        ?=
VIEW        ?=
GRIDSIZE    ?=
EPOCHS      ?=
# `make study WORKERS=3` (or auto): jobs on a local Dask cluster of that many workers; empty: in process.
WORKERS     ?=
SEEDS       ?=
# Training framework: torch (default) or tensorflow. Each backend has its own artifact root,
# so the two never share checkpoints, bundles or a training manifest.
BACKEND     ?= torch
PHASE_E     ?= $(ROOT)/phase_e$(if $(filter-out torch,$(BACKEND)),_$(BACKEND))
REPORT      ?= $(ROOT)/report$(if $(filter-out torch,$(BACKEND)),_$(BACKEND))
# Phase G's output: PINN (the backend's Phase E root) against the iterative baseline (Phase F).
PHASE_F_ROOT ?= $(ROOT)/phase_f
COMPARE     ?= $(ROOT)/compare$(if $(filter-out torch,$(BACKEND)),_$(BACKEND))
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.fly64-setup-stamp
PACKAGES    := packages/fly64-manifest packages/fly64-data packages/fly64-overlap packages/fly64-train \
               packages/fly64-iterative packages/fly64-compare
PKG_PRESENT := $(wildcard $(addsuffix /pyproject.toml,$(PACKAGES)))
PKG_DIRS    := $(patsubst %/pyproject.toml,%,$(PKG_PRESENT))
# fly64-train's frameworks and Dask are extras (a torch-only install is fly64-train[torch]); setup takes all.
PKG_INSTALL := $(foreach d,$(PKG_DIRS),'$(d)$(if $(filter packages/fly64-train,$(d)),[all])')

.PHONY: setup data overlap train study report iterative compare test lint clean distclean help

help:
	@echo "make setup                      create $(VENV) and install every package (editable)"
	@echo "make data                       Phase C dose sweep into $(ROOT)/phase_c"
	@echo "make overlap                    Phase D overlap views into $(ROOT)/phase_d (OVERLAP_ARGS, default: probe basis + controls matched to sparse)"
	@echo "make train DOSE=1000 VIEW=baseline   train one job (GRIDSIZE, EPOCHS, MAX_TIME optional; BACKEND=tensorflow)"
	@echo "make study                      every phase, every job, evaluation and the report (MAX_TIME=DD:HH:MM:SS per job, WORKERS=N|auto for Dask, SEEDS=\"0 1 2\" replicates, BACKEND)"
	@echo "make report                     $(REPORT): table, metrics.csv and figures from $(PHASE_E)"
	@echo "make iterative                  Phase F: pty-chi (LSQML) on every test split into $(PHASE_F_ROOT) (DOSE, VIEW, SEEDS; ITERATIVE_ARGS=\"--engine epie --epochs 100 --device cpu\")"
	@echo "make compare                    Phase G: $(COMPARE) (comparison.md, .csv, figures): $(PHASE_E) against $(PHASE_F_ROOT)"
	@echo "make test                       nox -s tests (all package suites + end-to-end)"
	@echo "make clean                      remove generated study data ($(ROOT)), never source"

setup: $(STAMP)

$(STAMP): constraints.txt $(PKG_PRESENT)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt $(addprefix -e ,$(PKG_INSTALL)) nox pytest pytest-xdist ruff hypothesis import-linter
	# pty-chi without its torchvision requirement (a CUDA wheel that breaks beside the CPU torch; its
	# other requirements are fly64-iterative's): docs/decisions.md, "Phase F: pty-chi without torchvision".
	$(if $(filter packages/fly64-iterative,$(PKG_DIRS)),$(BIN)/python -m pip install --quiet -c constraints.txt --no-deps ptychi)
	touch $(STAMP)

PHASE_C := $(ROOT)/phase_c/run_manifest.json
PHASE_D := $(ROOT)/phase_d/overlap_manifest.json
# Phase D of the study: views on the probe spacing basis (S = (1 - f) D), so dense and sparse differ in
# footprint overlap (0.52 against 0.06 nearest-neighbour) instead of only in position count, plus the
# equal-positions controls matched to sparse (dense_matched, baseline_matched) so a difference can be
# told apart from the amount of data (docs/overlap.md, docs/decisions.md). OVERLAP_ARGS= gives the
# design's patch basis without controls.
OVERLAP_ARGS ?= --spacing-basis probe --match-positions sparse

data: $(STAMP)
	$(BIN)/fly64-data generate --output-root $(ROOT)/phase_c

overlap: $(STAMP) $(PHASE_C)
	$(BIN)/fly64-overlap --phase-c-root $(ROOT)/phase_c --output-root $(ROOT)/phase_d $(OVERLAP_ARGS)

# Filters for `make train`; empty means every job.
TRAIN_ARGS = $(if $(DOSE),--dose $(DOSE)) $(if $(VIEW),--view $(VIEW)) $(if $(GRIDSIZE),--gridsize $(GRIDSIZE)) \
             $(if $(EPOCHS),--max-epochs $(EPOCHS)) $(if $(MAX_TIME),--max-time $(MAX_TIME))
# A baseline-only run needs no Phase D views.
TRAIN_NEEDS = $(PHASE_C) $(if $(filter-out baseline,$(or $(VIEW),all)),$(PHASE_D))
PHASE_E_ARGS = --phase-c-root $(ROOT)/phase_c --phase-d-root $(ROOT)/phase_d --artifact-root $(PHASE_E) \
               --backend $(BACKEND)

train: $(STAMP) $(TRAIN_NEEDS)
	$(BIN)/fly64-train run $(PHASE_E_ARGS) $(TRAIN_ARGS)

study: $(STAMP) $(PHASE_D)
	$(BIN)/fly64-train run $(PHASE_E_ARGS) $(if $(EPOCHS),--max-epochs $(EPOCHS)) $(if $(MAX_TIME),--max-time $(MAX_TIME)) \
	    $(if $(WORKERS),--executor dask --workers $(WORKERS)) \
	    $(if $(SEEDS),--seeds $(SEEDS))
	$(BIN)/fly64-train report --artifact-root $(PHASE_E) --output $(REPORT)
	$(BIN)/fly64-iterative run $(PHASE_F_ARGS) $(if $(SEEDS),--seeds $(SEEDS)) $(ITERATIVE_ARGS)
	# Phase G stays last: it compares what every phase above wrote.
	$(MAKE) compare

report: $(STAMP)
	$(BIN)/fly64-train report --artifact-root $(PHASE_E) --output $(REPORT)

# Phase F: pty-chi on the test splits Phase E scores (the same filters; engine flags via ITERATIVE_ARGS).
ITERATIVE_ARGS ?=
PHASE_F_ARGS = --phase-c-root $(ROOT)/phase_c --phase-d-root $(ROOT)/phase_d --artifact-root $(PHASE_F_ROOT)

iterative: $(STAMP) $(TRAIN_NEEDS)
	$(BIN)/fly64-iterative run $(PHASE_F_ARGS) $(if $(DOSE),--dose $(DOSE)) $(if $(VIEW),--view $(VIEW)) \
	    $(if $(SEEDS),--seeds $(SEEDS)) $(ITERATIVE_ARGS)

# Phase G reads the manifests only; a Phase F (or E) not run shows as "not run" in every cell.
compare: $(STAMP)
	$(BIN)/fly64-compare run --phase-e-root $(PHASE_E) --phase-f-root $(PHASE_F_ROOT) --output $(COMPARE)

# File targets let `make overlap` / `make train` build missing upstream data once.
$(PHASE_C): | $(STAMP)
	$(BIN)/fly64-data generate --output-root $(ROOT)/phase_c

$(PHASE_D): $(PHASE_C) | $(STAMP)
	$(BIN)/fly64-overlap --phase-c-root $(ROOT)/phase_c --output-root $(ROOT)/phase_d $(OVERLAP_ARGS)

test: $(STAMP)
	$(BIN)/nox -s tests

lint: $(STAMP)
	$(BIN)/nox -s lint

clean:
	rm -rf -- "$(ROOT)"

distclean: clean
	rm -rf -- $(VENV) .nox .pytest_cache .red-green
