// EPySeg: train (or fine-tune) a model on Tissue Analyzer folders (image.tif + image/handCorrection.tif).
// Folders are separated by ';'. The progress bar follows the steps; Esc stops after the current step.
// Headless: epyseg-ij macro EPySeg_Train.ijm --arg "data=[/data/wing] name=wing-v1 from=default epochs=20"
options = getArgument();
headless = call("java.lang.System.getProperty", "java.awt.headless");
if (options == "" && headless == "true") exit("Give the options with --arg 'data=[/data] name=x'");
if (options == "") {
    folder = getDirectory("Folder of corrected Tissue Analyzer images");
    options = "data=[" + folder + "] name=my-model from=default epochs=20 corrected";
}
path = call("epyseg.bridge.PyBridge.call", "train", options);  // same options as run("EPySeg Train", ...)
print("EPySeg: model saved to " + path);
