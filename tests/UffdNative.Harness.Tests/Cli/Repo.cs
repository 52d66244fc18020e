namespace UffdNative.Harness.Tests.Cli;

/// <summary>The repository these tests were built from (found by walking up to UffdNative.sln).</summary>
public static partial class Repo
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "UffdNative.sln")))
                return d.FullName;
        throw new InvalidOperationException($"no UffdNative.sln above {AppContext.BaseDirectory}");
    }

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    /// <summary>The major.minor of the target framework (Directory.Build.props: net10.0 → "10.0").</summary>
    public static string TargetFrameworkVersion => TargetFramework().Match(Read("Directory.Build.props")).Groups[1].Value;

    /// <summary>Splits a shell command line into words (single and double quotes, backslash escapes).</summary>
    public static List<string> ShellWords(string line)
    {
        var words = new List<string>();
        var cur = new System.Text.StringBuilder();
        bool any = false;
        char quote = '\0';
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quote != '\0')
            {
                if (c == quote)
                    quote = '\0';
                else if (c == '\\' && quote == '"' && i + 1 < line.Length)
                    cur.Append(line[++i]);
                else
                    cur.Append(c);
                continue;
            }
            if (c is '\'' or '"')
            {
                quote = c;
                any = true;
            }
            else if (c == '\\' && i + 1 < line.Length)
            {
                cur.Append(line[++i]);
                any = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (any || cur.Length > 0)
                    words.Add(cur.ToString());
                cur.Clear();
                any = false;
            }
            else
            {
                cur.Append(c);
            }
        }
        if (any || cur.Length > 0)
            words.Add(cur.ToString());
        return words;
    }

    [GeneratedRegex(@"<TargetFramework>net(\d+\.\d+)</TargetFramework>")]
    private static partial Regex TargetFramework();
}
