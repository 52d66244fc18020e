using UffdNative.Cli.Infrastructure;

// Everything (parsing, logging, error → exit code mapping) lives in Infrastructure/CliApp.cs.
return CliApp.Run(args);
