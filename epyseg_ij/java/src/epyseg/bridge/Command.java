package epyseg.bridge;

import ij.Macro;
import ij.plugin.PlugIn;
import java.util.HashMap;
import java.util.Map;

/**
 * The Plugins › EPySeg menu commands ("EPySeg Segment", "EPySeg Train"...), declared in plugins.config with the
 * command name as argument. Options come from the macro ({@code Macro.getOptions()}); without them Python shows a
 * dialog in the GUI, so the commands are macro-recordable.
 */
public class Command implements PlugIn {
    @Override
    public void run(String arg) {
        Map<String, Object> args = new HashMap<String, Object>();
        args.put("options", Macro.getOptions());
        args.put("display", Boolean.TRUE);
        try {
            PyBridge.request(arg, args);
        } catch (BridgeException e) {
            PyBridge.report(e);
        }
    }
}
