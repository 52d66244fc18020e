using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace UffdNative.Cli.Infrastructure;

/// <summary>What a long run reports as it goes: steps done out of a total, and a short status.</summary>
public interface IProgressSink
{
    /// <summary>Marks <paramref name="steps"/> more steps done.</summary>
    void Advance(long steps = 1);

    /// <summary>Sets the line shown beside the bar (e.g. the scenario or kernel being run).</summary>
    void Status(string text);

    /// <summary>Absolute form, for callbacks that report where they are: <paramref name="done"/> of
    /// <paramref name="total"/> steps, and the status line.</summary>
    void Update(long done, long total, string status);

    /// <summary>Writes a line of another program's output on stderr (above the bar on a terminal).</summary>
    void Line(string text);
}

/// <summary>
/// Progress for long runs (bench, fuzz, matrix): a Spectre.Console progress bar on stderr when stderr
/// is a terminal; otherwise (CI logs, redirected output, --json, -v quiet) Information log lines at
/// each tenth of the way, which -v normal shows. Never writes to stdout.
/// </summary>
public static class CliProgress
{
    /// <summary>Runs <paramref name="work"/> with a progress sink of <paramref name="total"/> steps.</summary>
    /// <param name="title">What is running ("fuzz 500 cases").</param>
    /// <param name="total">Number of steps; 0 or less for an unknown total.</param>
    /// <param name="json">True when stdout carries JSON: no live bar then, only log lines.</param>
    public static T Run<T>(string title, long total, bool json, Func<IProgressSink, T> work)
    {
        if (!json && CliConsole.ErrorIsInteractive && CliLog.Verbosity != Verbosity.Quiet)
        {
            return CliConsole.Error.Progress()
                .AutoClear(true)
                .HideCompleted(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(title), maxValue: total > 0 ? total : 1);
                    task.IsIndeterminate = total <= 0;
                    return work(new SpectreSink(task, title));
                });
        }
        var sink = new LogSink(CliLog.For("uffdnative.progress"), title, total);
        var result = work(sink);
        sink.Finish();
        return result;
    }

    /// <summary>The void form of <see cref="Run{T}"/>.</summary>
    public static void Run(string title, long total, bool json, Action<IProgressSink> work) =>
        Run<int>(title, total, json, s => { work(s); return 0; });

    private sealed class SpectreSink(ProgressTask task, string title) : IProgressSink
    {
        private string status = "";

        public void Advance(long steps = 1) => task.Increment(steps);

        public void Status(string text)
        {
            if (text == status)
                return;
            status = text;
            task.Description = Markup.Escape($"{title}: {text}");
        }

        public void Update(long done, long total, string status)
        {
            if (total > 0)
            {
                task.IsIndeterminate = false;
                task.MaxValue = total;
            }
            task.Value = Math.Min(done, total > 0 ? total : done);
            Status(status);
        }

        public void Line(string text) => CliConsole.Error.WriteLine(text);
    }

    /// <summary>Where stderr is not a terminal: logs (Information) each further tenth of the way
    /// and the end — at most 10 lines per run.</summary>
    public sealed class LogSink(ILogger log, string title, long total) : IProgressSink
    {
        private long total = total;
        private long done;
        private int lastTenth;
        private string status = "";

        public long Done => done;

        public void Advance(long steps = 1)
        {
            done += steps;
            if (total <= 0)
                return;
            int tenth = (int)Math.Min(10, done * 10 / total);
            if (tenth > lastTenth && tenth < 10)
            {
                lastTenth = tenth;
                log.LogInformation("{Title}: {Done}/{Total} ({Percent}%){Status}", title, done, total, tenth * 10, status.Length > 0 ? " " + status : "");
            }
        }

        public void Status(string text) => status = text;

        public void Line(string text) => Console.Error.WriteLine(text);

        public void Update(long done, long total, string status)
        {
            this.status = status;
            if (total > 0)
                this.total = total;
            Advance(done - this.done);
        }

        public void Finish()
        {
            if (total > 0)
                log.LogInformation("{Title}: done ({Done}/{Total} steps)", title, done, total);
            else
                log.LogInformation("{Title}: done", title);
        }
    }
}
