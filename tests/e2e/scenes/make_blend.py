"""Run with Blender's own Python: `blender -b --factory-startup --python make_blend.py -- OUT.blend`.

A tiny animated scene (a cube turning over frames 1-6, a sun, a camera) for the render tests: 64x48,
4 Cycles samples, no denoiser (Debian's Blender is built without OpenImageDenoise).
"""

import sys

import bpy

out = sys.argv[sys.argv.index("--") + 1]
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.samples = 4
scene.cycles.use_denoising = False
scene.cycles.device = "CPU"
scene.render.resolution_x = 64
scene.render.resolution_y = 48
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.frame_start = 1
scene.frame_end = 6
bpy.ops.mesh.primitive_cube_add(size=1.2)
cube = bpy.context.active_object
cube.rotation_euler = (0, 0, 0)
cube.keyframe_insert("rotation_euler", frame=1)
cube.rotation_euler = (0, 0, 3.0)
cube.keyframe_insert("rotation_euler", frame=6)
material = bpy.data.materials.new("red")
material.use_nodes = True
material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (1, 0.2, 0.1, 1)
cube.data.materials.append(material)
bpy.ops.object.light_add(type="SUN", location=(3, 3, 5))
bpy.context.active_object.data.energy = 3
bpy.ops.object.camera_add(location=(3, -3, 2.5), rotation=(1.1, 0, 0.785))
bpy.context.active_object.name = "Main"
scene.camera = bpy.context.active_object
bpy.ops.object.camera_add(location=(0, -4, 0.3), rotation=(1.5, 0, 0))
bpy.context.active_object.name = "Side"
world = bpy.data.worlds.new("sky")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs[0].default_value = (0.2, 0.3, 0.5, 1)
scene.world = world
bpy.ops.wm.save_as_mainfile(filepath=out)
