using SkiaSharp;

namespace UffdNative.Harness.Tests.Pictures;

/// <summary>What a PNG holds, decoded with SkiaSharp (the library the plots are drawn with; the
/// signature is checked first, independently of it).</summary>
public sealed record PngFacts(int Width, int Height, double LumaStdDev, double NonBackgroundFraction, IReadOnlySet<uint> Colours)
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0d, 0x0a, 0x1a, 0x0a];

    public static PngFacts Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > Signature.Length && bytes.AsSpan(0, Signature.Length).SequenceEqual(Signature), $"{path} does not start with the PNG signature");
        using var bmp = SKBitmap.Decode(bytes);
        Assert.True(bmp is not null, $"{path}: SkiaSharp cannot decode it as an image");
        // The background is the most common colour; "blank" means (almost) every pixel is it.
        var counts = new Dictionary<uint, int>();
        double sum = 0, sumSq = 0;
        for (int y = 0; y < bmp.Height; y++)
            for (int x = 0; x < bmp.Width; x++)
            {
                var c = bmp.GetPixel(x, y);
                uint rgb = (uint)(c.Red << 16 | c.Green << 8 | c.Blue);
                counts[rgb] = counts.GetValueOrDefault(rgb) + 1;
                double l = 0.2126 * c.Red + 0.7152 * c.Green + 0.0722 * c.Blue;
                sum += l;
                sumSq += l * l;
            }
        double n = (double)bmp.Width * bmp.Height;
        double mean = sum / n;
        int background = counts.Values.Max();
        return new PngFacts(bmp.Width, bmp.Height, Math.Sqrt(Math.Max(0, sumSq / n - mean * mean)), 1 - background / n, counts.Keys.ToHashSet());
    }

    /// <summary>Fails unless the image has visible content: more than 1 % of its pixels differ from the
    /// background and the luma varies (a blank or single-colour image has a deviation of 0).</summary>
    public void AssertNotBlank(string what)
    {
        Assert.True(NonBackgroundFraction > 0.01 && LumaStdDev > 5,
            $"{what} looks blank: {NonBackgroundFraction:P2} of {Width}×{Height} pixels differ from the background, luma deviation {LumaStdDev:F1}");
    }
}
