#!/usr/bin/env bash
# Regenerates every fixture under accept/ and reject/ from scratch, using real
# encoders, so that the magic-byte checks in shared/mediatype are tested
# against genuine files.
#
# Debian packages needed:
#   ffmpeg                 - H.264/AAC/MP3/Opus/Vorbis/VP8/H.263/WebP/PCM encoding
#   imagemagick            - JPEG, PNG, GIF and the WebP sticker (convert, or magick)
#   sox libsox-fmt-all libopencore-amrnb0
#                          - AMR-NB (Debian's ffmpeg has no libopencore_amrnb
#                            encoder; sox drives the same libopencore-amrnb library)
#   libreoffice-writer libreoffice-calc libreoffice-impress
#                          - PDF, DOCX, DOC, XLSX, XLS, PPTX, PPT
#   zip                    - the plain zip archive
#
#   apt-get update && apt-get install -y ffmpeg imagemagick sox libsox-fmt-all \
#     libopencore-amrnb0 libreoffice-writer libreoffice-calc libreoffice-impress zip
#
# Usage: bash make-fixtures.sh   (writes next to this script)
#
# Output is deterministic where the tools allow it: fixed sizes, colours and
# tones, single-threaded encoders, bit-exact muxing and no metadata. The
# LibreOffice outputs carry creation dates and document ids, so those differ
# from run to run (their leading magic bytes and structure do not).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
accept="$here/accept"
reject="$here/reject"

export TZ=UTC
export LC_ALL=C.UTF-8
export SOURCE_DATE_EPOCH=1704067200 # 2024-01-01T00:00:00Z

work="$(mktemp -d)"
lo_profile="/tmp/lo-profile-$$"
cleanup() { rm -rf "$work" "$lo_profile"; }
trap cleanup EXIT

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || {
			echo "make-fixtures: '$tool' not found (see the package list at the top of this script)" >&2
			exit 1
		}
	done
}
need ffmpeg sox soffice zip

if command -v magick >/dev/null 2>&1; then
	im=(magick)
else
	need convert
	im=(convert)
fi

rm -rf "$accept" "$reject"
mkdir -p "$accept" "$reject"

# ---------------------------------------------------------------- images

# JPEG: 64x64 vertical gradient.
"${im[@]}" -size 64x64 'gradient:#1e90ff-#ff8c00' -strip \
	-sampling-factor 2x2 -quality 85 "$accept/image.jpg"

# PNG: 64x64, 8-bit truecolour RGB (colour type 2), no time chunks.
"${im[@]}" -size 64x64 'gradient:#25d366-#075e54' -strip -depth 8 \
	-define png:exclude-chunks=date,time -define png:color-type=2 \
	"PNG24:$accept/image.png"

# Static WebP sticker: 512x512 with transparency (VP8X + ALPH + VP8).
"${im[@]}" -size 512x512 xc:none \
	-fill '#25d366' -stroke '#075e54' -strokewidth 12 -draw 'circle 256,256 256,40' \
	-fill '#ffffff' -stroke none -draw 'roundrectangle 156,196 356,316 24,24' \
	-fill '#075e54' -draw 'circle 206,256 206,276' -draw 'circle 306,256 306,276' \
	-strip -define webp:method=6 -define webp:lossless=false -quality 80 \
	"$accept/sticker.webp"

# GIF (rejected kind): 64x64, 16-colour palette.
"${im[@]}" -size 64x64 'gradient:#ff0000-#0000ff' -strip -colors 16 \
	"$reject/image.gif"

# ---------------------------------------------------------- audio / video

ff=(ffmpeg -hide_banner -loglevel error -nostdin -y)
exact=(-fflags +bitexact -flags:v +bitexact -flags:a +bitexact -map_metadata -1 -threads 1)
tone() { # tone SECONDS RATE
	echo "sine=frequency=440:sample_rate=$2:duration=$1"
}

# AMR-NB 12.2 kbit/s, 8 kHz mono, 1 s (libopencore-amrnb through sox).
sox -D -n -r 8000 -c 1 -t amr-nb -C 7 "$accept/audio.amr" synth 1 sine 440 vol 0.5

# MP4: H.264 constrained baseline, yuv420p, 96x96 @ 15 fps + AAC-LC mono, 1 s.
# The SEI NAL units (x264's version/options banner) are dropped.
"${ff[@]}" -f lavfi -i "testsrc2=size=96x96:rate=15:duration=1" \
	-f lavfi -i "$(tone 1 44100)" \
	-c:v libx264 -profile:v baseline -level:v 3.0 -pix_fmt yuv420p -preset medium -crf 30 \
	-bsf:v filter_units=remove_types=6 \
	-c:a aac -profile:a aac_low -b:a 48k -ac 1 \
	-shortest -movflags +faststart "${exact[@]}" -f mp4 "$accept/video.mp4"

# 3GP: H.263 176x144 @ 15 fps + AMR-NB 8 kHz mono (the AMR stream is the
# libopencore-amrnb output above, muxed as is), 1 s.
"${ff[@]}" -f lavfi -i "testsrc=size=176x144:rate=15:duration=1" \
	-i "$accept/audio.amr" \
	-map 0:v -map 1:a -c:v h263 -b:v 64k -g 15 -c:a copy \
	-shortest "${exact[@]}" -f 3gp "$accept/video.3gp"

# Raw ADTS AAC-LC, 1 s.
"${ff[@]}" -f lavfi -i "$(tone 1 44100)" \
	-c:a aac -profile:a aac_low -b:a 48k -ac 1 "${exact[@]}" -f adts "$accept/audio.aac"

# M4A (ipod muxer: ftyp major brand "M4A "), AAC-LC, 1 s.
"${ff[@]}" -f lavfi -i "$(tone 1 44100)" \
	-c:a aac -profile:a aac_low -b:a 48k -ac 1 "${exact[@]}" -f ipod "$accept/audio.m4a"

# MP3 (LAME) with an ID3v2.3 tag carrying a title, 1 s.
"${ff[@]}" -f lavfi -i "$(tone 1 44100)" \
	-c:a libmp3lame -b:a 64k -ac 1 "${exact[@]}" \
	-metadata title="Media gateway test tone" -id3v2_version 3 -write_id3v2 1 \
	-f mp3 "$accept/audio.mp3"

# Ogg Opus, 48 kHz mono, 1 s.
"${ff[@]}" -f lavfi -i "$(tone 1 48000)" \
	-c:a libopus -b:a 24k -ac 1 -ar 48000 "${exact[@]}" -f ogg "$accept/audio.opus.ogg"

# Ogg Vorbis (rejected kind), 22.05 kHz mono, 1 s.
"${ff[@]}" -f lavfi -i "$(tone 1 22050)" \
	-c:a libvorbis -q:a 0 -ac 1 "${exact[@]}" -f ogg "$reject/audio.vorbis.ogg"

# WebM (rejected kind): VP8 64x64 @ 15 fps + Opus, 1 s.
"${ff[@]}" -f lavfi -i "testsrc2=size=64x64:rate=15:duration=1" \
	-f lavfi -i "$(tone 1 48000)" \
	-c:v libvpx -b:v 100k -deadline good -cpu-used 0 -pix_fmt yuv420p \
	-c:a libopus -b:a 24k -ac 1 \
	-shortest "${exact[@]}" -f webm "$reject/video.webm"

# PCM WAV (rejected kind), 16-bit 16 kHz mono, 0.5 s.
"${ff[@]}" -f lavfi -i "$(tone 0.5 16000)" \
	-c:a pcm_s16le -ac 1 "${exact[@]}" -f wav "$reject/audio.wav"

# ------------------------------------------------------ hand-written text

cat >"$accept/document.txt" <<'EOF'
Media gateway test document
Café menu: crème brûlée, Müsli, Grüße aus München.
Price: ₹499 per month.
Greeting: 你好, 世界.
EOF

cat >"$reject/image.svg" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<svg width="64" height="64" viewBox="0 0 64 64">
  <title>Media gateway test image</title>
  <rect x="0" y="0" width="64" height="64" fill="#075e54"/>
  <circle cx="32" cy="32" r="20" fill="#25d366"/>
</svg>
EOF

cat >"$reject/page.html" <<'EOF'
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Media gateway test page</title>
</head>
<body>
<h1>Media gateway test page</h1>
<p>This page is not a media file and must be refused.</p>
</body>
</html>
EOF

# Plain zip holding one text file; fixed timestamp, no extra attributes.
printf 'Media gateway test archive.\nThis zip must be refused.\n' >"$work/notes.txt"
touch -d '2024-01-01 00:00:00 UTC' "$work/notes.txt"
(cd "$work" && zip -X -q -D "$reject/archive.zip" notes.txt)

# ------------------------------------------------------------ LibreOffice

src="$work/src"
out="$work/out"
mkdir -p "$src" "$out"

cat >"$src/document.fodt" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
  xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
  office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.text">
 <office:body>
  <office:text>
   <text:h text:outline-level="1">Media gateway test document</text:h>
   <text:p>This short document is a fixture for the upload type checks.</text:p>
   <text:p>It has a heading and three paragraphs of plain text.</text:p>
   <text:p>Café, Müsli, ₹499.</text:p>
  </office:text>
 </office:body>
</office:document>
EOF

cat >"$src/document.fods" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
  xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"
  xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
  office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.spreadsheet">
 <office:body>
  <office:spreadsheet>
   <table:table table:name="Uploads">
    <table:table-row>
     <table:table-cell office:value-type="string"><text:p>Kind</text:p></table:table-cell>
     <table:table-cell office:value-type="string"><text:p>Count</text:p></table:table-cell>
    </table:table-row>
    <table:table-row>
     <table:table-cell office:value-type="string"><text:p>image</text:p></table:table-cell>
     <table:table-cell office:value-type="float" office:value="12"><text:p>12</text:p></table:table-cell>
    </table:table-row>
    <table:table-row>
     <table:table-cell office:value-type="string"><text:p>video</text:p></table:table-cell>
     <table:table-cell office:value-type="float" office:value="5"><text:p>5</text:p></table:table-cell>
    </table:table-row>
    <table:table-row>
     <table:table-cell office:value-type="string"><text:p>audio</text:p></table:table-cell>
     <table:table-cell office:value-type="float" office:value="7"><text:p>7</text:p></table:table-cell>
    </table:table-row>
    <table:table-row>
     <table:table-cell office:value-type="string"><text:p>document</text:p></table:table-cell>
     <table:table-cell office:value-type="float" office:value="3"><text:p>3</text:p></table:table-cell>
    </table:table-row>
   </table:table>
   <table:table table:name="Summary">
    <table:table-row>
     <table:table-cell office:value-type="string"><text:p>Total</text:p></table:table-cell>
     <table:table-cell table:formula="of:=SUM([$Uploads.B2:.B5])" office:value-type="float" office:value="27"><text:p>27</text:p></table:table-cell>
    </table:table-row>
    <table:table-row>
     <table:table-cell office:value-type="string"><text:p>Note</text:p></table:table-cell>
     <table:table-cell office:value-type="string"><text:p>Müsli ₹</text:p></table:table-cell>
    </table:table-row>
   </table:table>
  </office:spreadsheet>
 </office:body>
</office:document>
EOF

cat >"$src/document.fodp" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"
  xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"
  xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"
  xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
  xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
  xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
  xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
  office:version="1.3" office:mimetype="application/vnd.oasis.opendocument.presentation">
 <office:automatic-styles>
  <style:page-layout style:name="PM1">
   <style:page-layout-properties fo:page-width="28cm" fo:page-height="15.75cm"
     fo:margin-top="0cm" fo:margin-bottom="0cm" fo:margin-left="0cm" fo:margin-right="0cm"
     style:print-orientation="landscape"/>
  </style:page-layout>
 </office:automatic-styles>
 <office:master-styles>
  <style:master-page style:name="Default" style:page-layout-name="PM1"/>
 </office:master-styles>
 <office:body>
  <office:presentation>
   <draw:page draw:name="Slide1" draw:master-page-name="Default">
    <draw:frame svg:x="2cm" svg:y="1.5cm" svg:width="24cm" svg:height="3cm">
     <draw:text-box><text:p>Media gateway test slides</text:p></draw:text-box>
    </draw:frame>
    <draw:frame svg:x="2cm" svg:y="6cm" svg:width="24cm" svg:height="6cm">
     <draw:text-box><text:p>First slide of the presentation fixture.</text:p></draw:text-box>
    </draw:frame>
   </draw:page>
   <draw:page draw:name="Slide2" draw:master-page-name="Default">
    <draw:frame svg:x="2cm" svg:y="1.5cm" svg:width="24cm" svg:height="3cm">
     <draw:text-box><text:p>Second slide: Café, Müsli, ₹499.</text:p></draw:text-box>
    </draw:frame>
   </draw:page>
  </office:presentation>
 </office:body>
</office:document>
EOF

lo() { # lo SOURCE TARGET_EXT FILTER
	soffice -env:UserInstallation="file://$lo_profile" --headless --norestore \
		--nologo --nodefault --nolockcheck \
		--convert-to "$2:$3" --outdir "$out" "$1" >"$work/lo.log" 2>&1 || {
		cat "$work/lo.log" >&2
		exit 1
	}
	local base
	base="$(basename "${1%.*}")"
	[ -s "$out/$base.$2" ] || {
		echo "make-fixtures: LibreOffice did not produce $base.$2" >&2
		cat "$work/lo.log" >&2
		exit 1
	}
}

lo "$src/document.fodt" pdf 'writer_pdf_Export'
lo "$src/document.fodt" docx 'MS Word 2007 XML'
lo "$src/document.fodt" doc 'MS Word 97'
lo "$src/document.fods" xlsx 'Calc MS Excel 2007 XML'
lo "$src/document.fods" xls 'MS Excel 97'
lo "$src/document.fodp" pptx 'Impress MS PowerPoint 2007 XML'
lo "$src/document.fodp" ppt 'MS PowerPoint 97'

mv "$out/document.pdf" "$out/document.docx" "$out/document.xlsx" \
	"$out/document.pptx" "$out/document.xls" "$accept/"
mv "$out/document.doc" "$out/document.ppt" "$reject/"

echo "make-fixtures: done"
ls -l "$accept" "$reject"
