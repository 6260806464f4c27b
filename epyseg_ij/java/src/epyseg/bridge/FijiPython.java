package epyseg.bridge;

import ij.IJ;
import java.lang.reflect.Method;
import javax.script.ScriptEngineFactory;

/**
 * Starts the EPySeg service on the first EPySeg command in a Fiji running in Python mode.
 *
 * <p>There, CPython hosts the JVM and SciJava's Python script language runs scripts in that interpreter. This class
 * finds that language through Fiji's SciJava context (by reflection: plain ImageJ has none) and runs
 * {@value #ATTACH} in it, which registers the dispatcher. Outside Python mode it does nothing and says why.
 */
final class FijiPython {
    static final String ATTACH = "import epyseg_ij.ij\nepyseg_ij.ij.attach()\n";
    private static final String CONTEXT = "org.scijava.Context";
    private static final String LANGUAGES = "org.scijava.plugins.scripting.python.";

    /** Why the last attempt did not register the service; null when there was no Fiji to ask. */
    private static String failure;

    private FijiPython() {
    }

    /** Runs the attach script in Fiji's Python; true if it ran (the dispatcher is then registered, or it failed). */
    static synchronized boolean attach() {
        failure = null;
        try {
            Class<?> contextClass = Class.forName(CONTEXT, false, IJ.getClassLoader());
            Object context = IJ.runPlugIn(CONTEXT, ""); // Fiji's legacy layer returns its running context
            if (!contextClass.isInstance(context)) {
                failure = "no SciJava context in this Fiji";
                return false;
            }
            ClassLoader loader = contextClass.getClassLoader();
            Class<?> scripts = Class.forName("org.scijava.script.ScriptService", true, loader);
            Method getService = contextClass.getMethod("getService", Class.class);
            Object service = getService.invoke(context, scripts);
            for (Object language : (Iterable<?>) scripts.getMethod("getLanguages").invoke(service)) {
                if (language.getClass().getName().startsWith(LANGUAGES)) {
                    ((ScriptEngineFactory) language).getScriptEngine().eval(ATTACH);
                    return true;
                }
            }
            failure = "this Fiji has no Python script language (Fiji 2.17 or later is needed)";
        } catch (ClassNotFoundException e) {
            return false; // plain ImageJ 1.x: no SciJava
        } catch (Throwable e) { // a JVM not hosted by Python, a missing epyseg_ij module...: said in the error
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            failure = "Fiji's Python could not start it (" + cause + ")";
        }
        return false;
    }

    /** The reason of the last failed attempt, or null. */
    static synchronized String failure() {
        return failure;
    }
}
