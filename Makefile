# Set-up is automatic: every target that needs Python creates .venv (pinned requirements.txt) when missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help venv test test-e2e lint bench bench-mwam paper-tables demo demo-brats table2 table6 table15 table4 table5 table7 table8 table9 \
        table10 table12 table16 table4-sde ablations-smoke bench-brats bench-nyuv2 bench-yolo table3 clean-venv \
        table1 table13 table14 table17 figure1 demo-balance bench-balancing demo-nyuv2 demo-yolo bench-threads \
        table11 demo-ucf101 bench-video

# make table4 PRESET=smoke | make table7 DATA_ROOT=/data/CASIA-SURF (default preset: paper)
# make table4 VARIANT=released: also the columns as the authors' released code trains them (VARIANT=sde: + SDE)
PRESET    ?= paper
DATA_ROOT ?=
VARIANT   ?=
# SEEDS="0 1 2": every column once per seed, the tables show mean +/- std (the demos take it too).
# RESUME=1 continues interrupted runs; THREADS=N sets torch's CPU threads; DEVICE=cpu|cuda|cuda:N (every training
# target, demos included: `make help` lists them).
SEEDS     ?=
RESUME    ?=
THREADS   ?=
DEVICE    ?=
SEED_ARGS  = $(if $(SEEDS),--seeds $(SEEDS))
RUN_ARGS   = $(SEED_ARGS) $(if $(RESUME),--resume) $(if $(THREADS),--threads $(THREADS)) $(if $(DEVICE),--device $(DEVICE))
TABLE_ARGS = --preset $(PRESET) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(if $(VARIANT),--with $(VARIANT)) \
             $(if $(PRETRAINED),--pretrained $(PRETRAINED)) $(RUN_ARGS)
FIGURE_ARGS = --preset $(PRESET) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(RUN_ARGS)

help:
	@echo "variables of every training target (tables, demos, figure1, ablations-smoke):"
	@echo "  PRESET=paper|smoke|demo (tables, figure1; default paper)  DATA_ROOT=DIR  VARIANT=...  SEEDS=\"0 1 2\""
	@echo "  RESUME=1 (continue interrupted runs)  THREADS=N (torch CPU threads)  DEVICE=cpu|cuda|cuda:N"
	@echo "make demo        create .venv if needed, train Table 4 (SF-MD, MMANet, both + MWAM) on synthetic CASIA-SURF,"
	@echo "                 write results/demo/table4.md (labelled synthetic)"
	@echo "make test        create .venv if needed, run the test suite (the end-to-end tests marked ci excluded)"
	@echo "make test-e2e    the end-to-end tests marked ci (trained tables, resumes, torchrun, ONNX): .ci/run runs both"
	@echo "make table4      train what Table 4 needs and render it (PRESET=paper|smoke|demo, DATA_ROOT=...):"
	@echo "                 SF-MD, MMANet (teacher trained first) and both + MWAM"
	@echo "make table2      Table 2 (BraTS2020, Dice per subset): RFNet, mmFormer and GSS, each with and without MWAM"
	@echo "                 (VARIANT=balancing: + OGM-GE and AGM on RFNet, per-voxel scores, docs/balancing.md)"
	@echo "make table3      Table 3 (NYU-Depth V2, MIoU): ESANet-MD and MMANet (from its ESANet teacher), each +/- MWAM"
	@echo "make table11     Table 11 (UCF-101 video + optical flow, Acc): the ResNet-18 concat video host, + MWAM,"
	@echo "                 + OGM-GE, + LFM (VARIANT=a3: the same under MWAM's Sec. A.3 settings; sum_fusion: LFM [sum])"
	@echo "make table12     Table 12 (DroneVehicle, mAP50): two-stream YOLOv8n +/- MWAM on pip ultralytics, with the PR"
	@echo "                 curves (Fig. 7) and detections (Fig. 6) per subset"
	@echo "make table6      Table 6 computed: parameters, FLOPs, MWAM's time per step (MMANet, RFNet) vs the paper"
	@echo "make table15     Table 15 (its continuation: HeMIS, Robust Seg, M3AE, LS3M, A2FSeg): paper-only numbers"
	@echo "make demo-brats  Table 2's RFNet columns on synthetic BraTS2020 NIfTI volumes (results/demo/table2.md)"
	@echo "make demo-nyuv2  Table 3's ESANet-MD columns on synthetic NYU-Depth V2 scenes (results/demo/table3.md, and"
	@echo "                 table3_classes.md: the IoU of each class per subset)"
	@echo "make demo-ucf101 Table 11's four columns on synthetic UCF-101 videos (.avi -> frames + TV-L1 flow; results/demo/)"
	@echo "make demo-yolo   Table 12's two columns on synthetic DroneVehicle pairs, with Figs. 6 and 7 (results/demo/)"
	@echo "                 (every demo takes SEEDS=\"0 1 2\": one run per seed, the table shows mean +/- std)"
	@echo "make table5      Table 5: MWAM's intervention levels on SF-MD (none / loss / gradient / hybrid)"
	@echo "make table7      Table 7: frequency window q in {1, 2, 4, 6} (MMANet + MWAM)"
	@echo "make table8      Table 8: FRM rule (Eq. 3 / 4 / 27 / 28) (MMANet + MWAM)"
	@echo "make table9      Table 9: weight-function parameters (alpha, beta, gamma, lambda) (MMANet + MWAM)"
	@echo "make table10     Table 10: batch sizes 64 / 16 / 4 / 1, MMANet with and without MWAM"
	@echo "make table16     Table 16: the rows of the Table 4 continuation this repository can train"
	@echo "make table4-sde  Table 4 plus this repository's SF-MD + SDE and SF-MD + MWAM + SDE columns"
	@echo "make table4 VARIANT=released  Table 4 plus each column as the authors' released code trains it"
	@echo "                 (released schedules, epoch 0 skipped, MWAM's released weighting; docs/training.md)"
	@echo "make table1      Table 1: the multi-modal model (SF) vs one model per subset, and each subset's FRM of the data"
	@echo "make table13     Table 13: OGM-GE, LFM, AGM and MWAM on ResNet-18 concat, three CASIA-SURF pairs"
	@echo "make table14     Table 14: MSES, MSLR and MWAM on ResNet-18 concat, three CASIA-SURF pairs"
	@echo "make table17     Table 17: CRMT-JT and MWAM on RGB + Depth (COM and DCP: the paper's numbers only)"
	@echo "                 (VARIANT=baseline: + the host alone; VARIANT=sum_fusion: LFM / MSES / MSLR on sum fusion)"
	@echo "make figure1     Fig. 1 (loss and accuracy curves on frequency-filtered data) and Fig. 5 (the filters)"
	@echo "make demo-balance the RGB + Depth block of Table 13 beside the host alone, on synthetic CASIA-SURF"
	@echo "                 (results/demo/table13.md, labelled SYNTHETIC)"
	@echo "make ablations-smoke  every ablation table above on synthetic data (minutes; results/smoke/)"
	@echo "make bench       SF-MD training step with / without MWAM, loader throughput, and the evaluation of the"
	@echo "                 7 subsets with the encoders run once vs one forward pass per subset, the balancing"
	@echo "                 plug-ins' steps and bench-video's UCF-101 measurements (JSON lines)"
	@echo "make bench-nyuv2 ESANet-MD: training step with / without MWAM, MWAM's share, memory, the loader's images/s"
	@echo "make bench-brats BraTS hosts: training step with / without MWAM, MWAM's share, FLOPs, memory and the"
	@echo "                 15-subset sliding-window evaluation of a volume vs one subset (JSON line)"
	@echo "make bench-yolo  two-stream YOLOv8n: ultralytics training step (batch 16, 640) with / without MWAM, images/s,"
	@echo "                 MWAM's share (CPU, and CUDA when present; JSON lines)"
	@echo "make bench-video UCF-101: the video host's training step with / without MWAM (interleaved), decoding and"
	@echo "                 TV-L1 flow time per video, the loader's clips/s against the step's (JSON lines)"
	@echo "make bench-mwam  time one MWAM step (CPU, and CUDA when present); prints one JSON line"
	@echo "make bench-balancing  the training step of ResNet-18 concat with each balancing plug-in beside MWAM's,"
	@echo "                 interleaved (median, spread, ratio to plain; MSLR / MSES validation per epoch; JSON line)"
	@echo "make bench-threads one SF-MD training step with 1 and 2 torch CPU threads, interleaved (what THREADS= rests on)"
	@echo "make paper-tables render every paper table (md, csv, tex) and Fig. 9 into results/paper/"
	@echo "make lint        ruff"

$(STAMP): requirements.txt pyproject.toml harness/pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# One distribution provides cv2 (opencv-python, which ultralytics requires): an environment made before that rule
	@# has opencv-python-headless too, which shares its files; both go, and the pinned one is installed again.
	@if $(PY) -m pip show -q opencv-python-headless >/dev/null 2>&1; then \
	  $(PY) -m pip uninstall -q -y opencv-python-headless opencv-python; fi
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e . -e harness
	$(PY) -m pip check
	@touch $(STAMP)

venv: $(STAMP)

# Two test processes (pytest-xdist): every test is single-threaded (tests/conftest.py), the machines have 2 cores.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not ci"

# The end-to-end tests (tables trained and rendered, resumes, torchrun, ONNX of ESANet-MD): minutes more, run by
# .ci/run after make test.
test-e2e: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m ci

lint: $(STAMP)
	$(PY) -m ruff check .

bench-brats: $(STAMP)
	$(PY) scripts/bench_brats.py --device all

bench-nyuv2: $(STAMP)
	$(PY) scripts/bench_nyuv2.py --device all

table3: $(STAMP)
	$(PY) -m reproduce table 3 $(TABLE_ARGS)

table11: $(STAMP)
	$(PY) -m reproduce table 11 $(TABLE_ARGS)

table12: $(STAMP)
	$(PY) -m reproduce table 12 $(TABLE_ARGS)

bench-yolo: $(STAMP)
	$(PY) scripts/bench_yolo.py --device all

bench-mwam: $(STAMP)
	$(PY) scripts/bench_mwam.py --device all

paper-tables: $(STAMP)
	$(PY) -m reproduce paper all --output-dir results/paper
	$(PY) -m reproduce plot filter --output results/paper/fig9

demo: $(STAMP)
	$(PY) -m reproduce table 4 --preset demo --output-dir results/demo $(RUN_ARGS)
	@echo "--> results/demo/table4.md (SYNTHETIC data: a test of the pipeline, not the paper's numbers)"

table4: $(STAMP)
	$(PY) -m reproduce table 4 $(TABLE_ARGS)

table2: $(STAMP)
	$(PY) -m reproduce table 2 $(TABLE_ARGS)

# Table 6 computed from the models (MWAM times on this machine's GPU when present, else its CPU).
table6: $(STAMP)
	$(PY) -m reproduce cost --output-dir results/table6

# Table 15 continues Table 2 with five methods this repository does not train: the paper's numbers only.
table15: $(STAMP)
	$(PY) -m reproduce paper 15 --output-dir results/paper
	@echo "--> results/paper/table15.md (paper-only: the paper's reported numbers; Table 2 has the trainable columns)"

demo-brats: $(STAMP)
	$(PY) -m reproduce table 2 --preset demo --output-dir results/demo $(RUN_ARGS) --columns RFNet "RFNet +MWAM"
	@echo "--> results/demo/table2.md (SYNTHETIC data: a test of the pipeline, not the paper's numbers)"

demo-nyuv2: $(STAMP)
	$(PY) -m reproduce table 3 --preset demo --output-dir results/demo $(RUN_ARGS) --columns ESANet-MD "ESANet-MD +MWAM"
	@echo "--> results/demo/table3.md, table3_classes.md (SYNTHETIC data: a test of the pipeline, not the paper's numbers)"

demo-ucf101: $(STAMP)
	$(PY) -m reproduce table 11 --preset demo --output-dir results/demo $(RUN_ARGS)
	@echo "--> results/demo/table11.md (SYNTHETIC data: a test of the pipeline, not the paper's numbers)"

demo-yolo: $(STAMP)
	$(PY) -m reproduce table 12 --preset demo --output-dir results/demo $(RUN_ARGS) --columns T-yolov8n "T-yolov8n +MWAM"
	@echo "--> results/demo/table12.md, table12_pr_curves.png, table12_detections.png (SYNTHETIC data)"

table5 table7 table8 table9 table10 table16 table1 table13 table14 table17: table%: $(STAMP)
	$(PY) -m reproduce table $* $(TABLE_ARGS)

figure1: $(STAMP)
	$(PY) -m reproduce figure 1 $(FIGURE_ARGS)

demo-balance: $(STAMP)
	$(PY) -m reproduce table 13 --preset demo --output-dir results/demo $(RUN_ARGS) --with baseline --columns \
	  "ResNet-18 concat (Rgb/Depth)" "OGM-GE (Rgb/Depth)" "LFM (Rgb/Depth)" "AGM (Rgb/Depth)" "MWAM (Rgb/Depth)"
	@echo "--> results/demo/table13.md (SYNTHETIC data: a test of the pipeline, not the paper's numbers)"

table4-sde: $(STAMP)
	$(PY) -m reproduce table 4 --with sde $(TABLE_ARGS)

ablations-smoke: $(STAMP)
	$(PY) -m reproduce ablations --preset smoke $(RUN_ARGS)
	@echo "--> results/smoke/ (SYNTHETIC data: a test of the pipeline, not the paper's numbers)"

bench: $(STAMP)
	$(PY) scripts/bench_train.py --device all
	$(PY) scripts/bench_eval.py --device all
	$(PY) scripts/bench_balancing.py
	$(PY) scripts/bench_video.py --device all
	$(PY) scripts/bench_ucf101_data.py

bench-balancing: $(STAMP)
	$(PY) scripts/bench_balancing.py

bench-video: $(STAMP)
	$(PY) scripts/bench_video.py --device all
	$(PY) scripts/bench_ucf101_data.py

bench-threads: $(STAMP)
	$(PY) scripts/bench_threads.py

clean-venv:
	rm -rf $(VENV)
