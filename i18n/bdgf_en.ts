<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1">
<context>
    <name>AssessAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="16"/>
        <source>Assess accuracy</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="19"/>
        <source>bdgf,accuracy,assessment,confusion matrix,kappa,validation,olofsson,area</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="22"/>
        <source>Compares a classified raster with reference polygons: confusion matrix, overall accuracy, kappa, per-class producer&apos;s/user&apos;s accuracy and F1, and area-adjusted accuracy and area estimates with 95 % confidence intervals (Olofsson et al. 2014).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="28"/>
        <source>A classified raster (for example from &apos;Classify&apos;).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="29"/>
        <source>Reference polygons, independent of the training polygons; &apos;Selected features only&apos; is honoured.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="31"/>
        <source>Field with the reference class, coded like the classification. Empty: the field of the layer&apos;s categorized style.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="33"/>
        <source>HTML accuracy report.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="34"/>
        <source>Confusion matrix and per-class accuracies as CSV.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="38"/>
        <source>Classified raster</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="39"/>
        <source>Reference polygons</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="41"/>
        <source>Accuracy report</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="41"/>
        <source>HTML files (*.html)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="43"/>
        <source>Accuracy table</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="43"/>
        <source>CSV files (*.csv)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>BdgfAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="94"/>
        <source>Accuracy assessment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="95"/>
        <source>Classification</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="139"/>
        <source>Spectral rasters (stacked in order)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="142"/>
        <source>Auxiliary rasters (SAR or elevation)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="145"/>
        <source>Auxiliary kind</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="145"/>
        <source>SAR backscatter (dB)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="145"/>
        <source>SAR backscatter (linear power)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="145"/>
        <source>Elevation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="151"/>
        <source>Extent (empty: the whole raster)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="155"/>
        <source>Device</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="155"/>
        <source>Automatic (CUDA if available)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="155"/>
        <source>CUDA GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="155"/>
        <source>CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="160"/>
        <source>Profile</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="160"/>
        <source>Fast</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="160"/>
        <source>Paper (full published settings)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="172"/>
        <source>Class field (empty: from the layer&apos;s categorized style)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="202"/>
        <source>Give at least one spectral raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="276"/>
        <source>Choose a class field: the layer &apos;{name}&apos; has no categorized style to take the classes from.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="285"/>
        <source>The polygon layer is not valid.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="319"/>
        <source>The polygon layer has no features (or no selected features).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="303"/>
        <source>The extent does not overlap the rasters.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="338"/>
        <source>Engine: {python} ({device})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="292"/>
        <source>Field &apos;{field}&apos; is not in the polygon layer.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="320"/>
        <source>No polygon overlaps the rasters (or the extent {extent}, {crs}). Check that the polygons and the rasters cover the same place.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="324"/>
        <source>The class field &apos;{field}&apos; has {n} class(es) in the (selected) polygons inside the rasters and extent: at least two classes are needed.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>BdgfLayers</name>
    <message>
        <location filename="../bdgf_plugin/layers.py" line="35"/>
        <source>A raster input is not a valid layer.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/layers.py" line="38"/>
        <source>Raster layer &apos;{name}&apos; comes from the &apos;{provider}&apos; provider (for example WMS, XYZ tiles or a database). BDGF reads raster files only: save it as a GeoTIFF first (right-click &gt; Export &gt; Save As...).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/layers.py" line="51"/>
        <source>Raster layer &apos;{name}&apos; is not a file on disk ({source}). Save it as a GeoTIFF first.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/layers.py" line="130"/>
        <source>Could not export &apos;{name}&apos; to {path}: {msg}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/layers.py" line="143"/>
        <source>&apos;{name}&apos; exported to {path} for the engine</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/layers.py" line="152"/>
        <source>Field &apos;{field}&apos; is not in the layer.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>BdgfProvider</name>
    <message>
        <location filename="../bdgf_plugin/provider.py" line="39"/>
        <source>BDGF multimodal land-cover classification ({version})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/provider.py" line="60"/>
        <source>Engine Python (interpreter with torch; empty: BDGF_ENGINE_PYTHON, then &lt;plugin&gt;/.venv)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>BdgfRunner</name>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="70"/>
        <source>The BDGF engine environment is not usable: {python} (from the {origin}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="75"/>
        <source>Fix: run  {command}  (creates &lt;plugin folder&gt;/.venv with torch, rasterio, fiona, scikit-learn, safetensors, einops, tqdm), or set Processing &gt; Options &gt; Providers &gt; BDGF &gt; Engine Python to an interpreter that has them (or the BDGF_ENGINE_PYTHON environment variable).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="262"/>
        <source>The file does not exist.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="139"/>
        <source>torch {torch}, CUDA available ({name})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="141"/>
        <source>torch {torch}, no CUDA: runs on the CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="184"/>
        <source>{s:.0f} s left</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="186"/>
        <source>{m:.0f} min left</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="187"/>
        <source>{h:.1f} h left</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="239"/>
        <source>killed by signal {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="240"/>
        <source>exit code {code}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="300"/>
        <source>Cancelling: stopping the engine (process {pid})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="379"/>
        <source>Cancelled: the BDGF engine was stopped ({how}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="383"/>
        <source>The BDGF engine reported an error.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="385"/>
        <source>Hint: </source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="388"/>
        <source>(no error output)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="389"/>
        <source>The BDGF engine stopped unexpectedly ({how}) during &apos;{command}&apos;. Last lines of its error output:
{tail}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="394"/>
        <source>The BDGF engine finished &apos;{command}&apos; without reporting its outputs.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ClassifyAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="74"/>
        <source>Classify</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="77"/>
        <source>bdgf,classify,classification,predict,land cover,map,deep learning</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="80"/>
        <source>Classifies the rasters with a trained BDGF model, tile by tile with bounded memory. The classified raster gets the model&apos;s class names and colours (paletted style, colour table and a QML sidecar); the optional confidence raster holds the winning class probability.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="87"/>
        <source>A model file written by &apos;Train classifier&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="88"/>
        <source>The same optical rasters as in training (same bands, same order).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="89"/>
        <source>The same auxiliary rasters as in training, if the model uses them.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="90"/>
        <source>What the auxiliary rasters hold; must match the model.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="91"/>
        <source>Classify only this extent. Empty: the whole raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="92"/>
        <source>Automatic uses a CUDA GPU when available, otherwise the CPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="93"/>
        <source>Tile size in pixels (empty: the model&apos;s default). Smaller tiles use less memory.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="95"/>
        <source>Patches per batch (empty: the default). Lower it when the GPU runs out of memory.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="97"/>
        <source>Classified raster (GeoTIFF, class values with colour table).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="98"/>
        <source>Optional confidence raster: probability of the winning class.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="102"/>
        <source>Trained model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="106"/>
        <source>Tile size (pixels)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="107"/>
        <source>Batch size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="108"/>
        <source>Classification</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="109"/>
        <source>Confidence</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="121"/>
        <source>{path} holds pretrained diffusion weights, not a trained classifier: give it to &apos;Train classifier&apos; as pretrained model.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="127"/>
        <source>The model was trained on {want} spectral bands; the spectral rasters have {have}. Give the same rasters, in the same order, as in training.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="134"/>
        <source>The model uses auxiliary rasters ({kinds}); give them as auxiliary rasters.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="137"/>
        <source>The model was trained without auxiliary rasters; leave them empty.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="142"/>
        <source>The model&apos;s auxiliary kind is {want}; the auxiliary kind chosen is {have}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="145"/>
        <source>The model was trained on {want} auxiliary bands; the auxiliary rasters have {have}.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>PretrainAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="14"/>
        <source>Pretrain diffusion model (self-supervised)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="17"/>
        <source>bdgf,diffusion,pretraining,self-supervised,unlabelled,deep learning</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="20"/>
        <source>Pretrains the BDGF spectral diffusion model on the imagery alone (no labels). The resulting file can be given to &apos;Train classifier&apos; as pretrained weights, so several classifiers can share one pretraining.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="26"/>
        <source>Optical rasters (multispectral or hyperspectral). All bands of all files are stacked in the given order; the first raster defines the grid.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="28"/>
        <source>Optional co-registered auxiliary rasters (SAR backscatter or a digital elevation model), resampled onto the spectral grid.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="30"/>
        <source>What the auxiliary rasters hold: SAR in decibels, SAR as linear power, or elevation.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="32"/>
        <source>Restrict pretraining to this extent (faster). Empty: the whole raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="33"/>
        <source>Where the engine runs: automatic uses a CUDA GPU when the engine&apos;s torch has one, otherwise the CPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="35"/>
        <source>Fast: small network and few iterations (minutes on a CPU). Paper: the published settings (needs a GPU).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="37"/>
        <source>Number of pretraining iterations (empty: the profile&apos;s default).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="38"/>
        <source>Random seed, for reproducible runs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="39"/>
        <source>Pretrained diffusion weights (.safetensors) with their metadata.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="47"/>
        <source>Pretraining iterations</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="48"/>
        <source>Random seed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="49"/>
        <source>Pretrained model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="49"/>
        <source>Safetensors model (*.safetensors)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>TrainAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="21"/>
        <source>Train classifier</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="24"/>
        <source>bdgf,train,training,classification,land cover,deep learning,polygons</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="27"/>
        <source>Trains a BDGF land-cover classifier from training polygons: diffusion features of the imagery (pretrained here or given as pretrained weights) fused with the spectral and auxiliary bands. Validation polygons are held out by polygon, never by pixel. Writes a self-describing model file (classes, colours, bands, normalisation) and an HTML validation report.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="35"/>
        <source>Optical rasters, stacked in the given order. Classify must get the same rasters (same bands, same order).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="37"/>
        <source>Optional auxiliary rasters (SAR backscatter or elevation).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="38"/>
        <source>What the auxiliary rasters hold.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="39"/>
        <source>Polygon layer with the training areas; any CRS (reprojected by the engine). &apos;Selected features only&apos; is honoured; memory layers and layers with unsaved edits are exported to a temporary GeoPackage.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="42"/>
        <source>Field with the class of each polygon (integers keep their values, text classes are numbered 1..K). Empty: the field, names and colours of the layer&apos;s categorized style. When the style is categorized on this field, its names and colours are used too.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="46"/>
        <source>Optional pretrained diffusion weights from &apos;Pretrain diffusion model&apos;. Empty: pretraining runs first on these rasters.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="48"/>
        <source>Restrict training to this extent. Empty: the whole raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="49"/>
        <source>Automatic uses a CUDA GPU when available, otherwise the CPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="50"/>
        <source>Fast: small network, few epochs. Paper: the published settings.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="51"/>
        <source>Pretraining iterations when no pretrained weights are given (empty: the profile&apos;s default).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="53"/>
        <source>Training epochs (empty: the profile&apos;s default).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="54"/>
        <source>Random seed, for reproducible runs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="55"/>
        <source>Fraction of the polygons of each class held out for validation.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="57"/>
        <source>The trained model (.safetensors).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="58"/>
        <source>HTML report: classes, pixel counts, validation accuracy.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="63"/>
        <source>Training polygons</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="65"/>
        <source>Pretrained diffusion model (optional)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="71"/>
        <source>Pretraining iterations</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="72"/>
        <source>Training epochs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="73"/>
        <source>Random seed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="74"/>
        <source>Validation fraction</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="78"/>
        <source>Trained model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="78"/>
        <source>Safetensors model (*.safetensors)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="80"/>
        <source>Training report</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="80"/>
        <source>HTML files (*.html)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="121"/>
        <source>Classes from the layer style: {classes}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="107"/>
        <source>{path} is a {kind} model, not pretrained diffusion weights: give a file written by &apos;Pretrain diffusion model&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
</TS>
