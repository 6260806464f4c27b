package epyseg.bridge;

import ij.IJ;
import ij.macro.Interpreter;
import ij.macro.QuietInterpreter;
import java.awt.GraphicsEnvironment;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One macro run by epyseg-ij on the calling thread, and how it ended: its value, or the error that stopped it (with
 * its line), or a plain {@code exit}.
 *
 * <p>ImageJ 1.x keeps one global "current interpreter", so a plug-in cannot tell which of several macros running at
 * once called it. A {@code MacroRun} is bound to its thread while it runs: the EPySeg commands find their caller with
 * {@link #current()} and stop that macro, not another one. As ImageJ's own macro runner does, the thread's name
 * ends with "Macro$" meanwhile, so that an ImageJ error ({@code IJ.error}, a cancelled dialog) stops the macro too.
 * Nothing is printed here; the caller reports.
 */
public final class MacroRun {
    private static final ThreadLocal<MacroRun> CURRENT = new ThreadLocal<MacroRun>();
    private static final String CANCELED = "Macro canceled"; // ImageJ's way to unwind a macro (ij.Macro)
    private static final String MACRO_THREAD = "_Macro$"; // what ImageJ's Macro_Runner appends to a thread's name
    private static final Set<MacroRun> LIVE = ConcurrentHashMap.newKeySet();
    private static final String DISPLAY_HINT = "install Xvfb, with which epyseg-ij macro runs ImageJ on a private"
            + " display, or run the macro with --gui";

    private final QuietInterpreter interpreter = new QuietInterpreter();
    private final Thread thread = Thread.currentThread();
    private String value;
    private String error;
    private int line;
    private boolean exited;
    private boolean cancelled;

    private MacroRun() {
    }

    /** Runs macro code with its argument on this thread; never throws. */
    public static MacroRun run(String code, String arg) {
        MacroRun run = new MacroRun();
        MacroRun outer = CURRENT.get();
        CURRENT.set(run);
        Thread thread = Thread.currentThread();
        boolean renamed = !thread.getName().endsWith("Macro$");
        if (renamed) {
            thread.setName(thread.getName() + MACRO_THREAD);
        }
        IJ.getErrorMessage(); // forget an older error
        LIVE.add(run);
        try {
            run.value = run.interpreter.run(code, arg == null ? "" : arg);
        } catch (Throwable t) { // ImageJ unwinds macros with exceptions; none may reach the caller
            run.stopped(t);
        } finally {
            LIVE.remove(run);
            String name = thread.getName(); // keep what ImageJ added meanwhile ("Run$_", which its options need)
            if (renamed && name.endsWith(MACRO_THREAD)) {
                thread.setName(name.substring(0, name.length() - MACRO_THREAD.length()));
            }
            if (outer == null) {
                CURRENT.remove();
            } else {
                CURRENT.set(outer);
            }
        }
        if (run.error == null && !run.exited && run.interpreter.getErrorMessage() != null) {
            run.failed(withHint(run.interpreter.getErrorMessage()), run.errorLine());
        }
        return run;
    }

    /** The run bound to this thread, or null outside {@link #run}. */
    public static MacroRun current() {
        return CURRENT.get();
    }

    /**
     * Stops every macro running now after the statement it is executing, as cancelled (Ctrl-C in
     * {@code epyseg-ij macro}); returns how many there were.
     */
    public static int cancelAll(String message) {
        int n = 0;
        for (MacroRun run : LIVE) {
            run.abort(message, true);
            n++;
        }
        return n;
    }

    /** The runs going on now, on any thread. */
    static Set<MacroRun> live() {
        return LIVE;
    }

    /** The thread this run's macro runs on. */
    Thread thread() {
        return thread;
    }

    /**
     * Stops this run's macro after the statement it is executing, with an error (from another thread: the macro's
     * own thread is blocked in that statement, e.g. waiting for a dialog that is about to be closed).
     */
    void stopWith(String message) {
        if (error == null) {
            failed(message, PyBridge.lineNumber(interpreter));
        }
        interpreter.setIgnoreErrors(true);
        interpreter.stop();
    }

    /** The macro line being executed. */
    int currentLine() {
        return PyBridge.lineNumber(interpreter);
    }

    /** Stops this run's macro with an EPySeg error (or cancellation), without a dialog. */
    void abort(String message, boolean cancel) {
        if (error == null) {
            failed(message, PyBridge.lineNumber(interpreter));
            cancelled = cancel;
        }
        interpreter.setIgnoreErrors(true);
        interpreter.abort(message);
    }

    private void stopped(Throwable t) {
        if (error != null) {
            return; // an EPySeg error already stopped it
        }
        boolean canceled = t instanceof RuntimeException && CANCELED.equals(t.getMessage());
        if (canceled && interpreter.getErrorMessage() != null) {
            failed(withHint(interpreter.getErrorMessage()), errorLine());
        } else if (canceled && thrownBy(t, "ij.macro.Functions", "exit")) {
            exited = true;
        } else if (canceled) {
            String reason = IJ.getErrorMessage(); // an IJ.error that stopped the macro, if any
            failed(reason != null ? oneLine(reason)
                    : "ImageJ cancelled the macro (a command that needs a dialog or its options was cancelled)",
                    PyBridge.lineNumber(interpreter));
        } else {
            failed(describe(t), PyBridge.lineNumber(interpreter));
        }
    }

    private void failed(String message, int where) {
        error = message;
        line = where;
    }

    private int errorLine() {
        int where = interpreter.getErrorLineNumber();
        return where > 0 ? where : PyBridge.lineNumber(interpreter);
    }

    private static boolean thrownBy(Throwable t, String className, String method) {
        for (StackTraceElement frame : t.getStackTrace()) {
            if (frame.getClassName().equals(className) && frame.getMethodName().equals(method)) {
                return true;
            }
        }
        return false;
    }

    /** The ImageJ class nearest to where the error was thrown ("Editor", "RoiManager"): the window being made. */
    private static String imagejClass(Throwable t) {
        String name = null;
        for (StackTraceElement frame : t.getStackTrace()) {
            boolean imagej = frame.getClassName().startsWith("ij.");
            if (imagej && (name == null || frame.getMethodName().equals("<init>"))) {
                name = frame.getClassName(); // a constructor called by a subclass's constructor: take the subclass
            } else if (name != null) {
                break;
            }
        }
        return name == null ? "a window" : name.substring(name.lastIndexOf('.') + 1);
    }

    /** A headless ImageJ knows only the plug-in commands: say so where it reports one of its own as unknown. */
    private static String withHint(String message) {
        if (GraphicsEnvironment.isHeadless() && message.startsWith("Unrecognized command")) {
            return message + " (headless ImageJ has only the EPySeg commands: " + DISPLAY_HINT + ")";
        }
        return message;
    }

    private static String oneLine(String text) {
        return text.trim().replaceAll("\\s*\\n\\s*", " ");
    }

    static String describe(Throwable t) {
        String name = t.getClass().getSimpleName();
        if (t instanceof java.awt.HeadlessException) {
            return "ImageJ needs a display here (" + imagejClass(t) + "): " + DISPLAY_HINT;
        }
        if (t instanceof OutOfMemoryError) {
            return "ImageJ ran out of memory (" + t.getMessage() + ")";
        }
        String message = t.getMessage();
        if (message == null || message.trim().isEmpty()) {
            return name;
        }
        return name + ": " + oneLine(message);
    }

    /** The macro's return value (null without {@code return} or after an error). */
    public String getValue() {
        return error == null ? value : null;
    }

    /** The one-line message of the error that stopped the macro, or null. */
    public String getError() {
        return error;
    }

    /** The macro line of that error; 0 when unknown. */
    public int getLine() {
        return line;
    }

    /** True when the macro stopped with {@code exit} or {@code exit("message")}: a normal end. */
    public boolean isExit() {
        return exited;
    }

    /** True when an EPySeg job was cancelled (Esc or the cancel command). */
    public boolean isCancelled() {
        return cancelled;
    }

    /** The interpreter, bound to this run's thread while it runs. */
    public Interpreter getInterpreter() {
        return interpreter;
    }
}
