"""bdgf:pretrain - self-supervised diffusion pretraining on unlabelled imagery."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterFileDestination

from .base import BdgfAlgorithm


class PretrainAlgorithm(BdgfAlgorithm):
    _name = "pretrain"

    def displayName(self):  # noqa: N802
        return self.tr("Pretrain diffusion model (self-supervised)")

    def tags(self):
        return self.tr("bdgf,diffusion,pretraining,self-supervised,unlabelled,deep learning").split(",")

    def shortDescription(self):  # noqa: N802
        return self.tr("Pretrains the BDGF spectral diffusion model on the imagery alone (no labels). The "
                       "resulting file can be given to 'Train classifier' as pretrained weights, so several "
                       "classifiers can share one pretraining.")

    def helpParameters(self):  # noqa: N802
        return [
            (self.SPECTRAL, self.tr("Optical rasters (multispectral or hyperspectral). All bands of all "
                                    "files are stacked in the given order; the first raster defines the grid.")),
            (self.AUXILIARY, self.tr("Optional co-registered auxiliary rasters (SAR backscatter or a "
                                     "digital elevation model), resampled onto the spectral grid.")),
            (self.AUXILIARY_KIND, self.tr("What the auxiliary rasters hold: SAR in decibels, SAR as linear "
                                          "power, or elevation.")),
            (self.EXTENT, self.tr("Restrict pretraining to this extent (faster). Empty: the whole raster.")),
            (self.DEVICE, self.tr("Where the engine runs: automatic uses a CUDA GPU when the engine's torch "
                                  "has one, otherwise the CPU.")),
            (self.PROFILE, self.tr("Fast: small network and few iterations (minutes on a CPU). Paper: the "
                                   "published settings (needs a GPU).")),
            (self.ITERATIONS, self.tr("Number of pretraining iterations (empty: the profile's default).")),
            (self.SEED, self.tr("Random seed, for reproducible runs.")),
            (self.LANDSCAPE_CONTEXT, self.context_help()),
            (self.RESUME, self.tr("Continue a pretraining that was cancelled or failed, from the checkpoint "
                                  "<output>.checkpoint.safetensors it left next to the output. Give the same inputs "
                                  "and output file as the interrupted run.")),
            (self.OUTPUT_MODEL, self.tr("Pretrained diffusion weights (.safetensors) with their metadata. An "
                                        "existing file is replaced only when pretraining succeeds.")),
        ]

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_modalities()
        self.add_extent()
        self.add_device()
        self.add_profile()
        self.add_int(self.ITERATIONS, self.tr("Pretraining iterations"))
        self.add_int(self.SEED, self.tr("Random seed"), minimum=0, default=0)
        self.add_context()
        self.add_resume()
        self.add(QgsProcessingParameterFileDestination(
            self.OUTPUT_MODEL, self.tr("Pretrained model"), self.tr("Safetensors model (*.safetensors)")))
        self._apply_help()

    def checkParameterValues(self, parameters, context):  # noqa: N802
        ok, msg = super().checkParameterValues(parameters, context)
        if not ok:
            return ok, msg
        for check in (lambda: self.check_rasters(parameters, context),
                      lambda: self.check_resume(parameters, context, self.OUTPUT_MODEL)):
            ok, msg = check()
            if not ok:
                return ok, msg
        return self.check_engine()

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.prepared = {"inputs": self.modality_args(parameters, context)}
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        self.report_device(feedback)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT_MODEL, context)
        args = (self.prepared["inputs"] + ["--output", output] + self.profile_args(parameters, context)
                + self.int_args(parameters, context, [(self.ITERATIONS, "--iterations"), (self.SEED, "--seed")])
                + self.extent_args(parameters, context) + self.device_args(parameters, context)
                + self.context_args(parameters, context) + self.resume_args(parameters, context))
        outputs = self.run_engine("pretrain", args, feedback, parameters, context, output,
                                  stages=[self.CONTEXT_STAGE, ("pretrain", 1)], outputs_to_clean=[output],
                                  keep=self.checkpoints(output))
        return {self.OUTPUT_MODEL: outputs.get("output", output)}
