// The handler host: everything is the library's (UffdNative.Serving.External.HandlerHostProgram).
return UffdNative.Serving.External.HandlerHostProgram.Main(args, Console.Out, Console.Error);
