<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1">
<context>
    <name>AssessAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="24"/>
        <source>Assess accuracy</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="27"/>
        <source>bdgf,accuracy,assessment,confusion matrix,kappa,validation,olofsson,area</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="30"/>
        <source>Compares a classified raster with reference polygons: confusion matrix, overall accuracy, kappa, per-class producer&apos;s/user&apos;s accuracy and F1, and area-adjusted accuracy and area estimates with 95 % confidence intervals (Olofsson et al. 2014).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="36"/>
        <source>A classified raster (for example from &apos;Classify&apos;).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="41"/>
        <source>Field with the reference class, coded like the classification. Empty: the field of the layer&apos;s categorized style.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="46"/>
        <source>HTML accuracy report.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="47"/>
        <source>Confusion matrix and per-class accuracies as CSV.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="51"/>
        <source>Classified raster</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="59"/>
        <source>Accuracy report</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="59"/>
        <source>HTML files (*.html)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="61"/>
        <source>Accuracy table</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="61"/>
        <source>CSV files (*.csv)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="37"/>
        <source>Reference polygons, independent of the training polygons, or a labelled point layer from &apos;Design accuracy sample&apos; (stratified estimates of accuracy and area with 95 % intervals, strata from the design). &apos;Selected features only&apos; is honoured.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="43"/>
        <source>Points only: the field with each point&apos;s stratum (default &apos;stratum&apos;; its size is read from &apos;stratum_pixels&apos;). Without these fields the map classes are the strata.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="52"/>
        <source>Reference polygons or labelled sample points</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="56"/>
        <source>Stratum field (sample points)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/assess.py" line="76"/>
        <source>&apos;{name}&apos; has {n} bands, so it is not a classification: a classified raster has one band of class values (for example the output of &apos;Classify&apos;). Give the classified map, not the imagery.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>BdgfAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="150"/>
        <source>Accuracy assessment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="151"/>
        <source>Classification</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="195"/>
        <source>Spectral rasters (stacked in order)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="198"/>
        <source>Auxiliary rasters (SAR or elevation)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="201"/>
        <source>Auxiliary kind</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="201"/>
        <source>SAR backscatter (dB)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="201"/>
        <source>SAR backscatter (linear power)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="201"/>
        <source>Elevation</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="207"/>
        <source>Extent (empty: the whole raster)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="211"/>
        <source>Device</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="211"/>
        <source>Automatic (CUDA if available)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="211"/>
        <source>CUDA GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="211"/>
        <source>CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="216"/>
        <source>Profile</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="216"/>
        <source>Fast</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="216"/>
        <source>Paper (full published settings)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="228"/>
        <source>Class field (empty: from the layer&apos;s categorized style)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="258"/>
        <source>Give at least one spectral raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="443"/>
        <source>Choose a class field: the layer &apos;{name}&apos; has no categorized style to take the classes from.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="491"/>
        <source>The polygon layer is not valid.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="528"/>
        <source>The polygon layer has no features (or no selected features).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="512"/>
        <source>The extent does not overlap the rasters.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="549"/>
        <source>Engine: {python} ({device})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="501"/>
        <source>Field &apos;{field}&apos; is not in the polygon layer.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="529"/>
        <source>No polygon overlaps the rasters (or the extent {extent}, {crs}). Check that the polygons and the rasters cover the same place.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="533"/>
        <source>The class field &apos;{field}&apos; has {n} class(es) in the (selected) polygons inside the rasters and extent: at least two classes are needed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="87"/>
        <source>{path} is a file, not a folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="358"/>
        <source>{param}: the file {path} does not exist. Check the path (was the file moved or renamed?).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="361"/>
        <source>{param}: {path} exists but cannot be opened as a layer. Check that it is a raster or vector file GDAL/OGR can read.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="407"/>
        <source>The output &apos;{output}&apos; ({path}) is also the input &apos;{input}&apos;: the run would replace its own input. Choose another file name for the output.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="411"/>
        <source>The outputs &apos;{a}&apos; and &apos;{b}&apos; are the same file {path}: give each output its own file name.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="416"/>
        <source>The output &apos;{output}&apos; ({path}) is a folder: give a file name.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="421"/>
        <source>The folder {folder} of the output &apos;{output}&apos; cannot be written ({problem}). Choose a folder you can write to.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="461"/>
        <source>point</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="461"/>
        <source>line</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="462"/>
        <source>polygon</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="463"/>
        <source>polygons or points</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="463"/>
        <source>polygons</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="464"/>
        <source>&apos;{name}&apos; is a {kind} layer, but &apos;{param}&apos; needs {needs}. Digitize polygons around the areas to label, or buffer the {kind}s first (Vector &gt; Geoprocessing Tools &gt; Buffer).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="469"/>
        <source>The layer &apos;{name}&apos; given as &apos;{param}&apos; is empty (no features, or no selected features with &apos;Selected features only&apos;).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="480"/>
        <source>Class value(s) {values} in the field &apos;{field}&apos; cannot be used: class values must be whole numbers from 1 to 65535, because 0 is the nodata value of the classified map. Recode them (for example with the Field Calculator) or use a text class field.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="592"/>
        <source>Resume an interrupted run from its checkpoint</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="608"/>
        <source>&apos;Resume&apos; is ticked but there is no checkpoint of an interrupted run for the output {output} ({checkpoint}). Give the same output file as the interrupted run, or untick &apos;Resume&apos; to start from the beginning.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="610"/>
        <source>(temporary file)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="617"/>
        <source>The checkpoint {files} was kept: run again with &apos;Resume&apos; ticked (same inputs and output) to continue from it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="635"/>
        <source>{path} exists: it is replaced when the run succeeds (left as it is if the run fails or is cancelled).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="641"/>
        <source>Cannot create the folder of {path}: {error}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="648"/>
        <source>Cancelled by the user; no output written.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="36"/>
        <source>Engine</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="334"/>
        <source>{name}: {value} is outside the allowed range {low} to {high}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="560"/>
        <source>Landscape context (water index over 100 m and 500 m)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="565"/>
        <source>Add two auxiliary bands derived from the spectral bands over the whole scene: the water index NDWI (green and near-infrared bands, found by their Sentinel-2 names or wavelength tags) averaged over 100 m and 500 m around each pixel. They tell a pixel near open water from one far inland, which a 5 x 5 px patch cannot: salt marsh along inland forest edges and built-up on the beach line are the errors they remove. They can also turn flooded marsh into water: compare the map with one trained without them. The model file records it, and classification derives the bands again by itself.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="582"/>
        <source>Prediction</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="582"/>
        <source>Fused classifier (paper Eq. 29)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/base.py" line="582"/>
        <source>Mean of the branch heads</source>
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
        <location filename="../bdgf_plugin/provider.py" line="44"/>
        <source>BDGF multimodal land-cover classification ({version})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/provider.py" line="65"/>
        <source>Engine Python (interpreter with torch; set by &apos;Set up engine environment&apos;; empty: BDGF_ENGINE_PYTHON, then the environment in the QGIS profile folder)</source>
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
        <location filename="../bdgf_plugin/runner.py" line="270"/>
        <source>The file does not exist.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="140"/>
        <source>torch {torch}, CUDA available ({name})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="142"/>
        <source>torch {torch}, no CUDA: runs on the CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="185"/>
        <source>{s:.0f} s left</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="187"/>
        <source>{m:.0f} min left</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="188"/>
        <source>{h:.1f} h left</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="247"/>
        <source>killed by signal {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="248"/>
        <source>exit code {code}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="309"/>
        <source>Cancelling: stopping the engine (process {pid})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="393"/>
        <source>Cancelled: the BDGF engine was stopped ({how}).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="397"/>
        <source>The BDGF engine reported an error.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="399"/>
        <source>Hint: </source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="402"/>
        <source>(no error output)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="403"/>
        <source>The BDGF engine stopped unexpectedly ({how}) during &apos;{command}&apos;. Last lines of its error output:
{tail}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="408"/>
        <source>The BDGF engine finished &apos;{command}&apos; without reporting its outputs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="75"/>
        <source>Fix: run the Processing algorithm BDGF &gt; Engine &gt; Set up engine environment ({algorithm}; from a terminal: {command}). It creates a private engine environment with torch in the QGIS profile folder and sets Processing &gt; Options &gt; Providers &gt; BDGF &gt; Engine Python; or point that setting (or the BDGF_ENGINE_PYTHON environment variable) at an interpreter that has the engine&apos;s packages.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/runner.py" line="388"/>
        <source>The engine had finished and written its outputs before the cancel arrived; they are kept.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ClassifyAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="85"/>
        <source>Classify</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="88"/>
        <source>bdgf,classify,classification,predict,land cover,map,deep learning</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="91"/>
        <source>Classifies the rasters with a trained BDGF model, tile by tile with bounded memory. The classified raster gets the model&apos;s class names and colours (paletted style, colour table and a QML sidecar); the optional confidence raster holds the winning class probability.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="98"/>
        <source>A model file written by &apos;Train classifier&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="105"/>
        <source>What the auxiliary rasters hold; must match the model.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="111"/>
        <source>Classify only this extent. Empty: the whole raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="114"/>
        <source>Automatic uses a CUDA GPU when available, otherwise the CPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="115"/>
        <source>Tile size in pixels (empty: the model&apos;s default). Smaller tiles use less memory.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="117"/>
        <source>Patches per batch (empty: the default). Lower it when the GPU runs out of memory.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="137"/>
        <source>Classified raster (GeoTIFF, class values with colour table).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="138"/>
        <source>Optional confidence raster: probability of the winning class.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="159"/>
        <source>Trained model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="169"/>
        <source>Tile size (pixels)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="170"/>
        <source>Batch size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="175"/>
        <source>Classification</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="176"/>
        <source>Confidence</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="196"/>
        <source>{path} holds pretrained diffusion weights, not a trained classifier: give it to &apos;Train classifier&apos; as pretrained model.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="206"/>
        <source>The model was trained on {want} spectral bands; the spectral rasters have {have}. Give the same rasters, in the same order, as in training.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="213"/>
        <source>The model uses auxiliary rasters ({kinds}); give them as auxiliary rasters.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="216"/>
        <source>The model was trained without auxiliary rasters; leave them empty.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="221"/>
        <source>The model&apos;s auxiliary kind is {want}; the auxiliary kind chosen is {have}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="224"/>
        <source>The model was trained on {want} auxiliary bands; the auxiliary rasters have {have}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="99"/>
        <source>Optical rasters with the bands the model was trained on (see &apos;Band order&apos;). Another scene works: the map is written on this scene&apos;s own grid (CRS and pixels), resampled only when its pixel size differs from the model&apos;s.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="106"/>
        <source>By band name: the bands are matched to the model&apos;s by their Sentinel-2 name (B04...), description or wavelength, reordered when given in another order, and a missing or unknown band is refused with the list the model expects. As given: the bands are used in the order given, for files renamed after training that hold the same bands in the training order.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="112"/>
        <source>Optional polygons: only pixels inside them are classified (the rest is nodata). &apos;Selected features only&apos; is honoured.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="139"/>
        <source>Optional uncertainty raster, two bands: 1 &apos;normalised_entropy&apos; (entropy of the class probabilities divided by ln K: 0 = certain, 1 = all classes equally likely) and 2 &apos;margin&apos; (probability of the best minus the second-best class: 0 = a tie). Where it is high (low margin), new training polygons help most.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="144"/>
        <source>Optional class probabilities: one band per class, named by class, values 0-1.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="161"/>
        <source>Band order</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="161"/>
        <source>By band name (reordered to the model&apos;s order)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="161"/>
        <source>As given (positional, for renamed files)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="166"/>
        <source>Classify inside polygons (mask)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="178"/>
        <source>Uncertainty (entropy, margin)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="181"/>
        <source>Class probabilities</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="183"/>
        <source>Area of applicability (dissimilarity index)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="303"/>
        <source>{outside} of {pixels} classified pixels ({share:.1f} %) lie outside the area of applicability.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="199"/>
        <source>{path} was trained before the plugin kept a model&apos;s training pixels, so it has no area of applicability: train it again, or leave the area of applicability (ranking by dissimilarity) out.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="171"/>
        <source>Coarse-to-fine (skip the network inside uniform areas)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="119"/>
        <source>On (default): the network classifies every 4th pixel of every 4th row, then only the pixels whose neighbours disagree, are unsure (class probability below 0.97, or 0.9 for adjacent neighbours) or whose own spectrum differs from theirs; the others, inside uniform water, forest or fields, take their neighbours&apos; class and mean probabilities. The same classes in a third to half the time. Off: the network classifies every pixel (exact probabilities in the confidence, uncertainty and probability rasters).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="146"/>
        <source>Optional area of applicability (Meyer and Pebesma 2021): the dissimilarity index of every pixel, the distance of its band values to the nearest training pixel over the mean distance between training pixels. Above the model&apos;s threshold (shown in magenta) the scene is unlike every training polygon: the map extrapolates there and the cross-validated accuracy does not hold. Digitize polygons there (&apos;Suggest training samples&apos;, ranked by dissimilarity). The log gives the share of every predicted class outside it and warns about a class mostly outside.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="102"/>
        <source>The same auxiliary rasters as in training, if the model uses them. A model trained with landscape context derives those bands from the spectral rasters itself: nothing to give for them.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="174"/>
        <source>The model&apos;s own (default)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/classify.py" line="127"/>
        <source>How the trained network gives its class probabilities. The model&apos;s own (default): the read-out kept at training, the fused classifier unless cross-validation put the heads&apos; mean at least one point of OA ahead (the training log and report say which). Fused classifier: over the three branches&apos; features (the paper&apos;s Eq. 29). Mean of the branch heads: the average of the CNN, Transformer and Mamba heads&apos; class probabilities. Both come from the same trained weights; the training report gives the accuracy of both under the same cross-validation folds. The heads&apos; mean was better on a data set of four polygons but put more built-up and forest at field edges on a full Sentinel-2 scene: compare both maps before choosing.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>CleanupAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="30"/>
        <source>Clean classification (sieve, majority filter)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="33"/>
        <source>bdgf,sieve,majority,mode,filter,minimum mapping unit,mmu,clean,smooth,salt and pepper</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="37"/>
        <source>Removes isolated pixels and small patches from a classified raster: an optional majority (modal) filter, then GDAL&apos;s sieve filter, which merges every patch smaller than the minimum mapping unit into its largest neighbour. The result keeps the colour table, class names and style of the input.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="44"/>
        <source>A classified raster (integer class values, 0 = nodata), e.g. from &apos;Classify&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="45"/>
        <source>Minimum mapping unit: patches (connected pixels of one class) smaller than this are merged into their largest neighbouring patch. Empty or 0: no sieve.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="47"/>
        <source>Unit of the minimum mapping unit: pixels or hectares (converted with the raster&apos;s pixel area).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="49"/>
        <source>Window side in pixels of a majority filter applied before the sieve (an odd number: 3, 5, 7...). Each pixel takes the most frequent class of its window; on a tie it keeps its class. Empty: no majority filter.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="52"/>
        <source>Which neighbours make a patch: 4 (edges) or 8 (edges and corners).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="53"/>
        <source>Cleaned classified raster (GeoTIFF with the same colour table and names).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="57"/>
        <source>Classified raster</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="58"/>
        <source>Minimum mapping unit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="61"/>
        <source>Minimum mapping unit in</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="61"/>
        <source>Pixels</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="61"/>
        <source>Hectares</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="63"/>
        <source>Majority filter window (pixels)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="66"/>
        <source>Connectivity</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="66"/>
        <source>4 (edges)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="66"/>
        <source>8 (edges and corners)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="69"/>
        <source>Cleaned classification</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="83"/>
        <source>Give a minimum mapping unit, a majority filter window, or both.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="85"/>
        <source>The majority filter window must be an odd number of pixels (3, 5, 7...), not {n}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/cleanup.py" line="111"/>
        <source>{n} pixels changed ({pct:.2f} %), {p} patches removed</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>EngineReportAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/enginereport.py" line="52"/>
        <source>Engine report (diagnostics)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/enginereport.py" line="55"/>
        <source>bdgf,diagnostics,report,bug,support,torch,cuda,gpu,versions</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/enginereport.py" line="58"/>
        <source>Collects what a bug report needs: the operating system, QGIS and its Python, the engine Python and where it comes from, torch and its CUDA build, whether CUDA works, the GPU (name, memory, driver), mamba-ssm and the versions of every package in the engine environment. Copy it from the log or save it to a text file. Nothing is changed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/enginereport.py" line="65"/>
        <source>Optional text file to save the report to (empty: only the log).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/enginereport.py" line="68"/>
        <source>Report file</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/enginereport.py" line="68"/>
        <source>Text files (*.txt)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/enginereport.py" line="71"/>
        <source>Report</source>
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
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="52"/>
        <source>Pretraining iterations</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="53"/>
        <source>Random seed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="56"/>
        <source>Pretrained model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="56"/>
        <source>Safetensors model (*.safetensors)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="40"/>
        <source>Continue a pretraining that was cancelled or failed, from the checkpoint &lt;output&gt;.checkpoint.safetensors it left next to the output. Give the same inputs and output file as the interrupted run.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/pretrain.py" line="43"/>
        <source>Pretrained diffusion weights (.safetensors) with their metadata. An existing file is replaced only when pretraining succeeds.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SampleDesignAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="50"/>
        <source>Design accuracy sample (stratified random)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="53"/>
        <source>bdgf,accuracy,sample,sampling design,stratified random,olofsson,validation,points,reference</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="57"/>
        <source>Draws a stratified random sample of points from a classified raster for accuracy assessment, following Olofsson et al. (2014): the total size from a target standard error of overall accuracy and the expected user&apos;s accuracy per class, a minimum per class (the rest proportional to area) and an optional minimum distance between points. Each point has its stratum and the stratum size, and an empty &apos;reference&apos; field to fill in; &apos;Assess accuracy&apos; then gives the stratified estimates with 95 % intervals.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="66"/>
        <source>The classified raster to assess; its classes are the strata.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="67"/>
        <source>Wanted standard error of the overall accuracy estimate, as a fraction (0.01 = ±1 %, about ±2 % at 95 %).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="69"/>
        <source>Anticipated user&apos;s accuracy of every class (a fraction), used by the sample-size formula.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="71"/>
        <source>Optional per-class anticipated user&apos;s accuracies overriding the value above, as &apos;class=value&apos; pairs separated by &apos;;&apos; (class value or name), e.g. &apos;3=0.7; water=0.95&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="74"/>
        <source>Minimum number of points in every class (Olofsson et al. suggest 50 to 100); the rest is allocated in proportion to the mapped area.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="76"/>
        <source>Total number of points, instead of the sample-size formula. Empty: from the target standard error.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="78"/>
        <source>Minimum distance between two points, in map units (0: none). It lowers spatial autocorrelation; a small class may then get fewer points (reported).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="81"/>
        <source>Random seed: the same seed draws the same sample.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="82"/>
        <source>Point layer to label: fields sample_id, stratum, stratum_name, stratum_pixels, stratum_area_ha, map_class and an empty reference.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="87"/>
        <source>Classified raster</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="88"/>
        <source>Target standard error of overall accuracy</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="91"/>
        <source>Expected user&apos;s accuracy</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="94"/>
        <source>Expected user&apos;s accuracy per class</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="97"/>
        <source>Minimum points per class</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="99"/>
        <source>Total sample size (empty: from the standard error)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="100"/>
        <source>Minimum distance between points</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="102"/>
        <source>Random seed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="103"/>
        <source>Sample points</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="118"/>
        <source>Cannot read the per-class expected user&apos;s accuracy &apos;{entry}&apos;: write &apos;class=value&apos; pairs with values in (0, 1], separated by &apos;;&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/sampledesign.py" line="144"/>
        <source>{name}: {drawn} of {planned} points ({pixels} pixels)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SetupEngineAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="58"/>
        <source>Set up engine environment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="61"/>
        <source>bdgf,install,setup,environment,engine,torch,pytorch,cuda,gpu,venv,pip,dependencies</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="64"/>
        <source>Creates (or repairs) the private Python environment the BDGF engine runs in: a virtual environment in the QGIS profile folder (kept across plugin upgrades) with torch, rasterio, fiona, scikit-learn and the other pinned engine packages. QGIS&apos;s own Python, numpy and GDAL are never touched. Run it once after installing the plugin (it needs an internet connection, about 1.5 GB of disk for the CPU build or 5-8 GB for CUDA, and a few minutes). Running it again only checks the environment, unless the plugin&apos;s requirements changed. It ends by running the engine&apos;s self-check and sets Processing &gt; Options &gt; Providers &gt; BDGF &gt; Engine Python.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="75"/>
        <source>Which torch build to install. Automatic: a CUDA build when nvidia-smi reports an NVIDIA GPU, otherwise the CPU build. CUDA: the newest CUDA build the installed NVIDIA driver supports (the driver version decides; an old driver is reported with the version it needs). CPU: the CPU build (smaller download; also on a machine with a GPU). macOS always gets the CPU build.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="80"/>
        <source>Python 3.10 or newer to build the environment from. Empty: QGIS&apos;s own Python installation on Windows (OSGeo4W / QGIS installer) and macOS, the system python3 on Linux, else another Python 3.10+ found on the system. Its packages are not used or changed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="84"/>
        <source>Also install mamba-ssm&apos;s CUDA kernels for the Mamba branch (Linux with a CUDA build only). Without them the engine uses its own selective scan: same results, slower. Needs a matching prebuilt wheel, otherwise it compiles for a long time; a failure is only a warning.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="88"/>
        <source>Where the environment is created. Empty: &lt;QGIS profile folder&gt;/bdgf/engine. It must be outside the plugin folder (an upgrade deletes that).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="91"/>
        <source>Package index to install torch from instead of the automatic choice (for example a company mirror, or https://download.pytorch.org/whl/cu128 to force a CUDA build).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="94"/>
        <source>Automatic: uv when it is installed (faster), otherwise Python&apos;s venv and pip. pip honours your pip configuration (proxy, mirrors); uv reads its own.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="97"/>
        <source>Empty the environment folder and install everything again, even when the check passes (repairs a damaged environment).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="103"/>
        <source>Automatic (CUDA when an NVIDIA GPU is found)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="103"/>
        <source>CUDA GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="104"/>
        <source>CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="105"/>
        <source>Device (torch build)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="107"/>
        <source>Base Python (empty: found automatically)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="109"/>
        <source>Install mamba-ssm CUDA kernels (optional)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="111"/>
        <source>Environment folder (empty: in the QGIS profile folder)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="114"/>
        <source>Package index for torch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="116"/>
        <source>Installer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="116"/>
        <source>Automatic (uv when installed, else pip)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="119"/>
        <source>Reinstall packages</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="121"/>
        <source>Engine Python</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="122"/>
        <source>torch version</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="123"/>
        <source>CUDA available</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="124"/>
        <source>Device</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="125"/>
        <source>What was done (installed or checked)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="150"/>
        <source>Base Python {path} does not exist: give the path of a python executable (python.exe on Windows).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="153"/>
        <source>The environment folder {path} is inside the plugin folder, which a plugin upgrade deletes: choose another folder or leave it empty.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="157"/>
        <source>{name} is missing from the plugin folder {folder}: reinstall the plugin from its zip.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="163"/>
        <source>Engine environment: {folder}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="164"/>
        <source>Creating the virtual environment</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="164"/>
        <source>Installing torch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="165"/>
        <source>Installing the engine&apos;s packages</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="166"/>
        <source>Installing mamba-ssm</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="166"/>
        <source>Checking the engine</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="173"/>
        <source>Cancelled: the set-up was stopped ({detail}). Run it again to finish; nothing outside {folder} was changed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="186"/>
        <source>Engine ready ({action}): {python}
  torch {torch} (CUDA build: {cuda_build}); CUDA available: {cuda}; device: {device}; mamba-ssm: {mamba}
  Engine Python setting set to this interpreter. Step times (s): {timings}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/setupengine.py" line="186"/>
        <source>none</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SuggestSamplesAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="37"/>
        <source>Suggest training samples (where to digitize next)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="56"/>
        <source>A model file written by &apos;Train classifier&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="57"/>
        <source>The same optical rasters as in training (same bands, same order).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="61"/>
        <source>What the auxiliary rasters hold; must match the model.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="62"/>
        <source>Search only this extent. Empty: the whole raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="63"/>
        <source>Optional polygons: search only inside them.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="64"/>
        <source>Number of suggested locations.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="65"/>
        <source>Minimum distance between two suggestions, in map units (0: one pixel).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="73"/>
        <source>Take the suggestions in turn from each predicted class, so one confused class cannot take the whole batch.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="75"/>
        <source>Automatic uses a CUDA GPU when available, otherwise the CPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="76"/>
        <source>Tile size in pixels (empty: the model&apos;s default).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="77"/>
        <source>Patches per batch (empty: the default).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="84"/>
        <source>Trained model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="87"/>
        <source>Search inside polygons</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="89"/>
        <source>Number of suggestions</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="92"/>
        <source>Minimum distance between suggestions</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="94"/>
        <source>Entropy</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="94"/>
        <source>Margin (best versus second best)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="98"/>
        <source>Balance over predicted classes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="101"/>
        <source>Tile size (pixels)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="102"/>
        <source>Batch size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="103"/>
        <source>Suggested locations</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="40"/>
        <source>bdgf,active learning,uncertainty,entropy,margin,suggest,training,samples,digitize,area of applicability,dissimilarity</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="44"/>
        <source>Classifies the scene with a trained model and suggests the locations where new training polygons would help most: the pixels where the model is least sure (entropy or margin of the class probabilities), kept a minimum distance apart and balanced over the predicted classes (uncertainty sampling with diversity; Tuia et al. 2011, Demir et al. 2011, Stumpf et al. 2014). Each point has its rank, predicted class, uncertainty and the two most likely classes. Digitize polygons around them, label them, and retrain. Ranked by dissimilarity instead, the points go where the scene is least like any training polygon (outside the area of applicability), where the model can be wrong and sure of itself.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="66"/>
        <source>Entropy: all class probabilities count (1 = all classes equally likely). Margin: the gap between the two most likely classes (small = confused between two classes). Dissimilarity: the dissimilarity index of the pixel&apos;s own band values, their distance to the nearest training pixel (Meyer and Pebesma 2021): high where the scene is unlike every training polygon, e.g. breaking surf or a crop nobody digitized, which the model may map with confidence; the &apos;dissimilarity&apos; field holds it.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="78"/>
        <source>Point layer: rank (1 = first), pred_class, pred_name, uncertainty (the ranking value), entropy, margin, prob_first, second_class, second_name, prob_second, dissimilarity (when ranked by it).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="94"/>
        <source>Rank by</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="94"/>
        <source>Dissimilarity (unlike the training polygons)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/suggestsamples.py" line="58"/>
        <source>The same auxiliary rasters as in training, if the model uses them. A model trained with landscape context derives those bands from the spectral rasters itself: nothing to give for them.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>TrainAlgorithm</name>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="22"/>
        <source>Train classifier</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="25"/>
        <source>bdgf,train,training,classification,land cover,deep learning,polygons</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="37"/>
        <source>Optical rasters, stacked in the given order. Classify must get the same rasters (same bands, same order).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="39"/>
        <source>Optional auxiliary rasters (SAR backscatter or elevation).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="40"/>
        <source>What the auxiliary rasters hold.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="41"/>
        <source>Polygon layer with the training areas; any CRS (reprojected by the engine). &apos;Selected features only&apos; is honoured; memory layers and layers with unsaved edits are exported to a temporary GeoPackage.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="44"/>
        <source>Field with the class of each polygon (integers keep their values, text classes are numbered 1..K). Empty: the field, names and colours of the layer&apos;s categorized style. When the style is categorized on this field, its names and colours are used too.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="48"/>
        <source>Optional pretrained diffusion weights from &apos;Pretrain diffusion model&apos;. Empty: pretraining runs first on these rasters.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="50"/>
        <source>Restrict training to this extent. Empty: the whole raster.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="51"/>
        <source>Automatic uses a CUDA GPU when available, otherwise the CPU.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="52"/>
        <source>Fast: small network, few epochs. Paper: the published settings.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="53"/>
        <source>Pretraining iterations when no pretrained weights are given (empty: the profile&apos;s default).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="55"/>
        <source>Training epochs (empty: the profile&apos;s default).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="56"/>
        <source>Random seed, for reproducible runs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="110"/>
        <source>HTML report: classes, pixel counts, validation accuracy.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="115"/>
        <source>Training polygons</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="117"/>
        <source>Pretrained diffusion model (optional)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="123"/>
        <source>Pretraining iterations</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="124"/>
        <source>Training epochs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="125"/>
        <source>Random seed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="132"/>
        <source>Validation fraction</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="150"/>
        <source>Trained model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="150"/>
        <source>Safetensors model (*.safetensors)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="152"/>
        <source>Training report</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="152"/>
        <source>HTML files (*.html)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="210"/>
        <source>Classes from the layer style: {classes}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="196"/>
        <source>{path} is a {kind} model, not pretrained diffusion weights: give a file written by &apos;Pretrain diffusion model&apos;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="28"/>
        <source>Trains a BDGF land-cover classifier from training polygons: diffusion features of the imagery (pretrained here or given as pretrained weights) fused with the spectral and auxiliary bands. Accuracy comes from cross-validation grouped by polygon (never by pixel), next to a random forest under the same folds; the final model is refit on every polygon. Writes a self-describing model file (classes, colours, bands, normalisation) and an HTML validation report.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="57"/>
        <source>How accuracy is estimated before the final model is refit on every polygon: &apos;cv:K&apos; (K-fold cross-validation grouped by polygon, with a random forest under the same folds; K is lowered when a class has fewer polygons), &apos;holdout:F&apos; (one share F of each class&apos;s polygons held out), or &apos;none&apos; (fastest: no accuracy figures). Empty: cv:5, or holdout with the validation fraction below when that is set.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="68"/>
        <source>Fraction of the polygons of each class held out for validation (hold-out mode). Empty: cross-validation.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="108"/>
        <source>The trained model (.safetensors). An existing file is replaced only when training succeeds; it can never be one of the inputs.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="126"/>
        <source>Validation (cv:K, holdout:F or none)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="70"/>
        <source>How far training evens out the classes: 1 draws every class equally often, so a class of 40 pixels weighs as much as one of 4 000 (good for rare classes, may over-map them); 0.5 draws in proportion to the square root of the pixel count; 0 in proportion to the pixel count. Empty: 1.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="136"/>
        <source>Class balance (0-1)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="104"/>
        <source>Continue a training that was cancelled or failed, from the checkpoints &lt;output&gt;.checkpoint.safetensors (.cv, .pre) it left next to the output: finished cross-validation folds and stages are not run again. Give the same inputs and output file as the interrupted run.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="63"/>
        <source>Cross-validation by spatial block: the side (metres) of square blocks whose polygons always fall in the same fold, so that neighbouring polygons are never on both sides of a fold (nearby pixels look alike, which makes polygon folds optimistic when polygons cluster). E.g. 2000. Empty or 0: folds by polygon.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="128"/>
        <source>Spatial block size for cross-validation (m)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="183"/>
        <source>A spatial block size for cross-validation needs validation cv:K, not {mode}: use cv:K or clear the block size.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="139"/>
        <source>Pseudo-label share (0-0.95)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="75"/>
        <source>Share of the training draws taken from unlabelled pixels of the scene that a random forest trained on the polygons is at least 90 % sure of. They show the network its classes next to covers no polygon reaches (forest by a road, a field by a hedge), where it would otherwise guess from the surroundings, but they also carry the forest&apos;s own errors. E.g. 0.7 with few polygons per class. Empty or 0: the polygons alone.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="81"/>
        <source>Share of each water polygon covered by drawn foam stripes (surf, breaking waves) whose pixels train as water, and of each dry-sand polygon covered by swash-zone stripes (wet sand and foam) whose pixels train as sand. No one digitizes the surf line, and without them it is mapped as the nearest bright class, often built-up. Needs bands with known wavelengths (Sentinel-2 band names or wavelength tags) and a class whose spectrum is water. Empty: 0.5 (fast profile), 0 (paper profile); 0: off.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="142"/>
        <source>Whitewater share of water and sand polygons (0-1)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="89"/>
        <source>Train this many networks, each with its own random seed, and classify with the mean of their class probabilities (an ensemble). Steadier with few polygons per class; 3 members take about 2.5-3 times as long to train and to classify. Empty or 1: one network.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="146"/>
        <source>Ensemble members</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="102"/>
        <source>On by itself when the pretrained model has it (it must then be pretrained with it).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="93"/>
        <source>How the trained network gives its class probabilities, kept in the model file. Chosen by cross-validation (default): with the fast profile, the mean of the branch heads when the folds put it at least one point of OA ahead of the fused classifier, otherwise the fused classifier (the paper profile keeps the fused classifier). Fused classifier: over the three branches&apos; features (the paper&apos;s Eq. 29). Mean of the branch heads: the average of the CNN, Transformer and Mamba heads&apos; class probabilities. The report gives the accuracy of both; Classify&apos;s Prediction can read the model out the other way later.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <location filename="../bdgf_plugin/algorithms/train.py" line="147"/>
        <source>Chosen by cross-validation (default)</source>
        <translation type="unfinished"></translation>
    </message>
</context>
</TS>
