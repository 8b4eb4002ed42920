// Thresher demo scene: a glossy sphere bouncing around a checkered floor, one loop over NFRAMES.
// Render frame F of N with:
//   povray -D +Idemo_scene.pov +Oframe_0001.png +FN +W320 +H240 \
//          +K1 Declare=NFRAMES=24
// (+K sets `clock` to the frame number; -D means no display window.) No #include: the scene renders
// with the bare povray package, without povray-includes.

#version 3.7;

#ifndef (NFRAMES)
  #declare NFRAMES = 24;
#end

global_settings { assumed_gamma 1.0 }

#declare Phase = mod(clock - 1, NFRAMES) / NFRAMES;
#declare Angle = 2 * pi * Phase;
#declare R = 0.6;
#declare Center = <1.6 * cos(Angle), R + 1.2 * abs(sin(2 * Angle)), 4.0 + 1.2 * sin(Angle)>;

camera {
  location <0, 1.2, -1.5>
  look_at <0, 0.9, 4>
  angle 60
}

light_source { <-6, 10, -5> color rgb 1.1 }
light_source { <6, 4, -6> color rgb 0.25 shadowless }

sky_sphere {
  pigment { gradient y color_map { [0 color rgb <0.55, 0.7, 0.9>] [1 color rgb <0.2, 0.35, 0.8>] } }
}

plane {
  y, 0
  pigment { checker color rgb 0.8 color rgb 0.25 scale 0.66 }
  finish { diffuse 0.8 reflection 0.08 }
}

sphere {
  Center, R
  pigment { color rgb <0.9, 0.35 + 0.3 * sin(Angle), 0.2 + 0.2 * cos(Angle)> }
  finish { diffuse 0.7 specular 0.6 roughness 0.02 reflection 0.15 }
}
